"""Prometheus metrics of the webhook app, on a registry of its own per app instance.

A private ``CollectorRegistry`` (not the global default) lets several apps live in one
process, as they do in the test suite, without duplicate-metric errors.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "WebhookMetrics"]

# Publish latency is dominated by linger.ms and the broker round trip: 1 ms .. 10 s.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WebhookMetrics:
    """Requests and outcomes per source, and the time from produce() to broker ack."""

    def __init__(self, known_sources: frozenset[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._known = known_sources
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

    def label(self, source: str) -> str:
        """The source label; anything not a known source is 'unknown' (bounded cardinality)."""
        return source if source in self._known else "unknown"

    def record_outcome(self, source: str, outcome: str, status: int) -> None:
        self.outcomes.labels(self.label(source), outcome, str(status)).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of this app's metrics."""
        return generate_latest(self.registry)
