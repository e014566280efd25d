"""Prometheus metrics of one worker, in a registry of its own (several workers can share a
process in tests). Names are ``capi_worker_*``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from capi_stream.avro.codec import AVRO_FALLBACKS
from consumers.pipeline.processor import BatchReport


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        r.register(AVRO_FALLBACKS)
        self.consumed = Counter("capi_worker_consumed", "Records consumed", ["topic"], registry=r)
        self.sent = Counter("capi_worker_sent", "Events Meta accepted", registry=r)
        self.already_sent = Counter(
            "capi_worker_already_sent", "Replays of events already sent (skipped)", registry=r
        )
        self.expired = Counter(
            "capi_worker_expired", "Events older than 7 days, recorded not sent", registry=r
        )
        self.failed = Counter(
            "capi_worker_failed", "Failed events by error class", ["error_class"], registry=r
        )
        self.retried = Counter(
            "capi_worker_retried", "Events forwarded to a retry tier", ["topic"], registry=r
        )
        self.deferred = Counter(
            "capi_worker_deferred", "Events deferred while their tenant is throttled", registry=r
        )
        self.dead_lettered = Counter(
            "capi_worker_dead_lettered", "Records sent to the dead-letter topic", registry=r
        )
        self.outages = Counter(
            "capi_worker_dependency_outages", "Batches replayed after an outage", registry=r
        )
        self.meta_seconds = Histogram(
            "capi_worker_meta_send_seconds", "Duration of one tenant's Meta send",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0), registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            "capi_worker_batch_size", "Records per batch",
            buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500), registry=r,
        )  # fmt: skip
        self.lag = Gauge(
            "capi_worker_consumer_lag", "High watermark minus position",
            ["topic", "partition"], registry=r,
        )  # fmt: skip
        self.paused = Gauge(
            "capi_worker_paused_partitions", "Partitions waiting for a due time", registry=r
        )
        self.outage = Gauge(
            "capi_worker_dependency_outage", "1 while paused for a dependency outage", registry=r
        )
        self.assigned = Gauge(
            "capi_worker_assigned_partitions", "Partitions assigned to this worker", registry=r
        )

    def observe_batch(self, report: BatchReport) -> None:
        self.sent.inc(report.sent)
        self.expired.inc(report.expired)
        self.already_sent.inc(report.already_sent)
        self.deferred.inc(report.deferred)
        self.dead_lettered.inc(report.dead_lettered)
        for error_class, count in report.failed_by_class.items():
            self.failed.labels(error_class).inc(count)
        for topic, count in report.retried_by_topic.items():
            self.retried.labels(topic).inc(count)
        for seconds in report.send_seconds:
            self.meta_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
