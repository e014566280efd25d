"""One place that wires a ``BatchProcessor``: the worker and ``capi replay`` both call it.

Both run the same steps with the same collaborators (codec, topics, store, contact linker,
tenant cache, concurrent sender, retry options); only the store and the tenant cache differ
(replay wraps the store for its modes and may use clients that send nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import EventCodec
from capi_stream.kafka.topics import TopicNames
from consumers.config import WorkerConfig
from consumers.pipeline.contacts import SqlContactLinker
from consumers.pipeline.items import PipelineOptions
from consumers.pipeline.processor import BatchProcessor, EventStore
from consumers.pipeline.sender import ConcurrentSender
from consumers.pipeline.tenants import MetaSender, TenantCache
from meta_capi.client import MetaCAPIClient

__all__ = ["build_meta_client_factory", "build_processor"]


def build_processor(
    *,
    codec: EventCodec,
    topics: TopicNames,
    sessions: sessionmaker[Session],
    store: EventStore,
    tenants: TenantCache,
    config: WorkerConfig,
) -> BatchProcessor:
    """The pipeline over ``store`` and ``tenants``; its sender is closed by the caller
    (``processor.sender.close()``) when the run ends."""
    return BatchProcessor(
        codec=codec,
        topics=topics,
        store=store,
        contacts=SqlContactLinker(sessions),
        tenants=tenants,
        sender=ConcurrentSender(config.send_concurrency),
        options=PipelineOptions(config.retry_delays_seconds, config.rate_limit_default_seconds),
    )


def build_meta_client_factory(config: WorkerConfig) -> Callable[[Mapping[str, Any]], MetaSender]:
    """How a tenant's stored credentials become a Meta client, with the config's endpoint,
    API version, timeout and partner agent."""

    def build(credentials: Mapping[str, Any]) -> MetaSender:
        # A tenant may name its own Graph endpoint (the dev stack's demo tenant: the emulator).
        graph_url = credentials.get("graph_url")
        return MetaCAPIClient.from_tenant(
            credentials,
            graph_url=graph_url if isinstance(graph_url, str) else config.meta_graph_url,
            api_version=config.meta_api_version,
            timeout_seconds=config.meta_timeout_seconds,
            partner_agent=config.meta_partner_agent,
        )

    return build
