"""Prometheus metrics of one worker, in a registry of its own (several workers can share a
process in tests). Names are ``capi_worker_*``.

The dashboard (``deploy/grafana``) and the alert rules (``deploy/prometheus``) use only what
is defined here and in ``producers.metrics``; a test checks names and label names.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from capi_stream.avro.codec import AVRO_FALLBACKS
from consumers.dead_letter_stats import DeadLetterStats
from consumers.dlq_limit import DeadLetterLimit
from consumers.pipeline.processor import BatchReport

# Outcomes of ``capi_worker_tenant_events``; tenants are bounded by the tenants table.
TENANT_OUTCOMES = ("sent", "retried", "dead_lettered", "expired")


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
            "capi_worker_meta_send_seconds",
            "Duration of one tenant's Meta send",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.batch_size = Histogram(
            "capi_worker_batch_size",
            "Records per batch",
            buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500),
            registry=r,
        )
        self.lag = Gauge(
            "capi_worker_consumer_lag",
            "High watermark minus position",
            ["topic", "partition"],
            registry=r,
        )
        self.paused = Gauge(
            "capi_worker_paused_partitions", "Partitions waiting for a due time", registry=r
        )
        self.outage = Gauge(
            "capi_worker_dependency_outage", "1 while paused for a dependency outage", registry=r
        )
        self.assigned = Gauge(
            "capi_worker_assigned_partitions", "Partitions assigned to this worker", registry=r
        )
        self.tenant_events = Counter(
            "capi_worker_tenant_events",
            "Events by tenant and outcome (sent, retried, dead_lettered, expired)",
            ["tenant", "outcome"],
            registry=r,
        )
        self.ready = Gauge("capi_worker_ready", "1 while /readyz answers 200", registry=r)
        self.dlq_limit = Gauge(
            "capi_worker_dead_letter_limit",
            "DLQ_LIMIT_COUNT: more in the window stops the worker",
            registry=r,
        )
        self.dlq_window = Gauge(
            "capi_worker_dead_letters_in_window",
            "Dead letters of this worker within DLQ_LIMIT_WINDOW_SECONDS",
            registry=r,
        )
        self.dead_events = Gauge(
            "capi_worker_dead_letter_events",
            "Events dead in the database (awaiting a redrive)",
            registry=r,
        )
        self.dead_oldest = Gauge(
            "capi_worker_dead_letter_oldest_age_seconds",
            "Time since the oldest still-dead event was dead-lettered",
            registry=r,
        )
        self.dead_oldest_event = Gauge(
            "capi_worker_dead_letter_oldest_event_age_seconds",
            "Age of the oldest still-dead event (Meta refuses events older than 7 days)",
            registry=r,
        )
        self.started = Gauge(
            "capi_worker_started_timestamp_seconds",
            "When this worker process started (Unix time)",
            registry=r,
        )
        self.started.set(time.time())  # `changes()` of it counts restarts (e.g. DLQ-limit exits)
        # Throttling, per tenant: Meta's limits are the tenant's volume, not the events' fault.
        self.tenant_throttled = Counter(
            "capi_worker_tenant_throttled_sends",
            "Sends Meta answered with a rate limit",
            ["tenant"],
            registry=r,
        )
        self.tenant_deferred = Counter(
            "capi_worker_tenant_deferred",
            "Events held back while the tenant was paused",
            ["tenant"],
            registry=r,
        )
        self.tenant_paused_until = Gauge(
            "capi_worker_tenant_paused_until_seconds",
            "Unix time a throttled tenant may send again (absent: not paused)",
            ["tenant"],
            registry=r,
        )
        self.paused_tenants = Gauge(
            "capi_worker_paused_tenants", "Tenants paused because Meta throttled them", registry=r
        )
        self._paused_labels: set[str] = set()
        self._window: DeadLetterLimit | None = None
        self._window_lock = threading.Lock()

    def watch(
        self,
        ready: Callable[[], tuple[bool, str]],
        limit: DeadLetterLimit,
        dead_letters: Callable[[], DeadLetterStats | None],
    ) -> None:
        """Gauges read at scrape time: readiness, the dead-letter limit, the dead events.

        The window is a copy of ``limit`` fed by ``observe_batch`` under a lock: the worker's
        own limit is not thread-safe and the scrape runs on the health thread.
        """
        self.ready.set_function(lambda: 1.0 if ready()[0] else 0.0)
        self.dlq_limit.set(limit.max_count)
        self._window = DeadLetterLimit(limit.max_count, limit.window_seconds)
        self.dlq_window.set_function(self._recent_dead_letters)

        def stat(pick: Callable[[DeadLetterStats], float]) -> Callable[[], float]:
            def read() -> float:
                stats = dead_letters()
                return float("nan") if stats is None else pick(stats)

            return read

        self.dead_events.set_function(stat(lambda s: float(s.count)))
        self.dead_oldest.set_function(stat(lambda s: s.oldest_age_seconds))
        self.dead_oldest_event.set_function(stat(lambda s: s.oldest_event_age_seconds))

    def _recent_dead_letters(self) -> float:
        with self._window_lock:
            return float(self._window.recent) if self._window is not None else 0.0

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
        for (tenant, outcome), count in report.by_tenant.items():
            self.tenant_events.labels(tenant, outcome).inc(count)
        if report.dead_lettered and self._window is not None:
            with self._window_lock:
                self._window.add(report.dead_lettered)
        for tenant, count in report.throttled_by_tenant.items():
            self.tenant_throttled.labels(tenant).inc(count)
        for tenant, count in report.deferred_by_tenant.items():
            self.tenant_deferred.labels(tenant).inc(count)
        if report.paused_tenants is not None:
            self._observe_paused(report.paused_tenants)

    def _observe_paused(self, paused: dict[str, int]) -> None:
        for tenant in self._paused_labels - paused.keys():
            self.tenant_paused_until.remove(tenant)
        for tenant, until_ms in paused.items():
            self.tenant_paused_until.labels(tenant).set(until_ms / 1000)
        self._paused_labels = set(paused)
        self.paused_tenants.set(len(paused))

    def render(self) -> bytes:
        return generate_latest(self.registry)
