"""Prometheus metrics of the webhook app, on a registry of its own per app instance.

A private ``CollectorRegistry`` (not the global default) lets several apps live in one
process, as they do in the test suite, without duplicate-metric errors. Labelled children
are looked up once and kept: ``labels()`` takes a lock and builds a key on every call, and
the webhook path updates three metrics per request.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from capi_stream.avro.codec import AVRO_FALLBACKS

__all__ = ["CONTENT_TYPE_LATEST", "WebhookMetrics"]

# Publish latency is dominated by linger.ms and the broker round trip: 1 ms .. 10 s.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WebhookMetrics:
    """Requests and outcomes per source, and the time from produce() to broker ack."""

    def __init__(self, known_sources: frozenset[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._known = known_sources
        self.registry.register(AVRO_FALLBACKS)
        self.requests = Counter(
            "capi_webhook_requests",
            "Webhook requests received, by source.",
            ["source"],
            registry=self.registry,
        )
        self.outcomes = Counter(
            "capi_webhook_outcomes",
            "Webhook responses by source, outcome and HTTP status.",
            ["source", "outcome", "status"],
            registry=self.registry,
        )
        self.publish_latency = Histogram(
            "capi_webhook_publish_latency_seconds",
            "Time from produce() to the broker's acknowledgement, by source.",
            ["source"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ready = Gauge(
            "capi_webhook_ready",
            "1 when the last /readyz found the broker and the database up, else 0.",
            registry=self.registry,
        )
        self.dependency_up = Gauge(
            "capi_webhook_dependency_up",
            "1 when the last /readyz reached the dependency (broker, database), else 0.",
            ["dependency"],
            registry=self.registry,
        )

        labels = sorted(known_sources | {"unknown"})
        self._requests: dict[str, Any] = {s: self.requests.labels(s) for s in labels}
        self._latency: dict[str, Any] = {s: self.publish_latency.labels(s) for s in labels}
        self._outcomes: dict[tuple[str, str, int], Any] = {}

    def label(self, source: str) -> str:
        """The source label; anything not a known source is 'unknown' (bounded cardinality)."""
        return source if source in self._known else "unknown"

    def count_request(self, source: str) -> None:
        self._requests[self.label(source)].inc()

    def observe_publish(self, source: str, seconds: float) -> None:
        self._latency[self.label(source)].observe(seconds)

    def record_outcome(self, source: str, outcome: str, status: int) -> None:
        key = (self.label(source), outcome, status)
        child = self._outcomes.get(key)
        if child is None:  # bounded: known sources x outcomes x the statuses we answer
            child = self._outcomes[key] = self.outcomes.labels(key[0], outcome, str(status))
        child.inc()

    def record_readiness(self, broker_ok: bool, database_ok: bool) -> None:
        """What the last readiness check found (probes run every few seconds)."""
        self.dependency_up.labels("broker").set(1 if broker_ok else 0)
        self.dependency_up.labels("database").set(1 if database_ok else 0)
        self.ready.set(1 if broker_ok and database_ok else 0)

    def render(self) -> bytes:
        """The Prometheus text exposition of this app's metrics."""
        return generate_latest(self.registry)
