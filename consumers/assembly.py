"""The worker's composition root: its clients and parts, built from a ``WorkerConfig``.

``Worker`` (``consumers/worker.py``) keeps only the loop; what it runs on is built here:
the pipeline (``consumers.pipeline.assembly.build_processor``) over the SQL store and the
tenant cache, the metrics, the dead-letter limit, the outage backoff, and the two Kafka
clients, each owned by a ``ClientLifecycle`` that rebuilds it after a fatal error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import EventCodec
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.consumer import Consumer, own_group_consumer
from capi_stream.kafka.lifecycle import ClientLifecycle, RecoveryPolicy
from capi_stream.kafka.producer import ConfirmedProducer
from capi_stream.kafka.topics import TopicNames
from consumers.config import WorkerConfig
from consumers.dead_letter_stats import DeadLetterStatsReader
from consumers.delays import Backoff
from consumers.dlq_limit import DeadLetterLimit
from consumers.metrics import WorkerMetrics
from consumers.pipeline.assembly import build_meta_client_factory, build_processor
from consumers.pipeline.processor import BatchProcessor
from consumers.pipeline.store import SqlEventStore
from consumers.pipeline.tenants import MetaSender, TenantCache

__all__ = ["WorkerParts", "build_consumers", "build_forward_producer", "build_worker_parts"]


@dataclass(frozen=True, slots=True)
class WorkerParts:
    """Everything the loop uses besides its Kafka clients (built when ``run`` starts)."""

    metrics: WorkerMetrics
    store: SqlEventStore
    tenants: TenantCache
    processor: BatchProcessor
    dlq_limit: DeadLetterLimit
    dead_letter_stats: DeadLetterStatsReader
    backoff: Backoff


def build_worker_parts(
    *,
    topics: TopicNames,
    sessions: sessionmaker[Session],
    codec: EventCodec,
    config: WorkerConfig,
    build_client: Callable[[Mapping[str, Any]], MetaSender] | None = None,
) -> WorkerParts:
    """The pipeline and its bookkeeping; ``build_client`` replaces the Meta client (tests)."""
    store = SqlEventStore(sessions)
    tenants = TenantCache(
        store.load_tenant,
        build_client or build_meta_client_factory(config),
        ttl_seconds=config.tenant_cache_ttl_seconds,
    )
    processor = build_processor(
        codec=codec, topics=topics, sessions=sessions, store=store, tenants=tenants, config=config
    )
    return WorkerParts(
        metrics=WorkerMetrics(),
        store=store,
        tenants=tenants,
        processor=processor,
        dlq_limit=DeadLetterLimit(config.dlq_limit_count, config.dlq_limit_window_seconds),
        dead_letter_stats=DeadLetterStatsReader(sessions),
        backoff=Backoff(config.outage_backoff_base_seconds, config.outage_backoff_cap_seconds),
    )


def build_consumers(
    kafka: KafkaConfig, config: WorkerConfig, policy: RecoveryPolicy
) -> ClientLifecycle[Consumer]:
    """The group consumer, replaced by a fresh member after a fatal error."""
    return own_group_consumer(kafka, config.group_id, policy=policy)


def build_forward_producer(kafka: KafkaConfig, policy: RecoveryPolicy) -> ConfirmedProducer:
    """The producer of retries and dead letters (``acks=all``, confirmed per batch)."""
    return ConfirmedProducer(kafka.producer_config(), policy=policy)
