"""The worker's resolved options (frozen), built from ``CapiSettings`` at the CLI edge."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from capi_stream.kafka.topics import TopicNames
from capi_stream.settings import CapiSettings

Tiers = Literal["main", "retries", "all"]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Everything a ``Worker`` is told besides its clients.

    ``metrics_port`` None runs no health server; 0 picks a free port (logged at start).
    """

    group_id: str = "capi-worker"
    tiers: Tiers = "all"
    batch_max_events: int = 1000
    batch_max_wait_seconds: float = 0.5
    max_inflight_batches: int = 4  # batches upserted/sent/recorded at once (Meta's latency)
    retry_delays_seconds: tuple[float, ...] = (60.0, 300.0, 1800.0, 7200.0)
    rate_limit_default_seconds: float = 60.0
    dlq_limit_count: int = 100
    dlq_limit_window_seconds: float = 60.0
    send_concurrency: int = 48  # Meta requests open at once (WORKER_MAX_CONCURRENT_SENDS)
    tenant_cache_ttl_seconds: float = 60.0
    outage_backoff_base_seconds: float = 0.5
    outage_backoff_cap_seconds: float = 30.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 0
    meta_graph_url: str = "https://graph.facebook.com"
    meta_api_version: str = "v26.0"
    meta_timeout_seconds: float = 1.5
    meta_partner_agent: str | None = "capi-stream"

    @classmethod
    def from_settings(cls, settings: CapiSettings, **overrides: Any) -> WorkerConfig:
        config = cls(
            group_id=settings.consumer_group,
            batch_max_events=settings.batch_max_events,
            batch_max_wait_seconds=settings.batch_max_wait_seconds,
            max_inflight_batches=settings.worker_max_inflight_batches,
            send_concurrency=settings.worker_max_concurrent_sends,
            retry_delays_seconds=tuple(settings.retry_delays_seconds),
            dlq_limit_count=settings.dlq_limit_count,
            dlq_limit_window_seconds=settings.dlq_limit_window_seconds,
            metrics_host=settings.http_host,
            metrics_port=settings.worker_metrics_port,
            meta_graph_url=settings.meta_graph_url,
            meta_api_version=settings.meta_api_version,
            meta_timeout_seconds=settings.meta_timeout_seconds,
            meta_partner_agent=settings.meta_partner_agent,
        )
        return replace(config, **overrides)

    def subscribed_topics(self, topics: TopicNames) -> list[str]:
        """The main topic and/or its retry tiers, as ``tiers`` says."""
        if self.tiers == "main":
            return [topics.main]
        if self.tiers == "retries":
            return list(topics.retries)
        return [topics.main, *topics.retries]
