"""What the pipeline's topics should look like, and how a cluster differs from that.

Pure values, no client: ``capi topics`` asks the broker (``topic_admin``) for each topic's
partitions and ``retention.ms``, then ``compare_topics`` names every difference. Only two
kinds can be fixed in place: a missing topic (create it) and a wrong retention (set it).
A wrong partition count is reported, never changed: adding partitions moves keys to other
partitions (per-contact order breaks for keys in flight) and Kafka cannot remove any.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from capi_stream.kafka.topics import TopicNames
from capi_stream.settings import CapiSettings

__all__ = [
    "ProblemKind",
    "TopicProblem",
    "TopicSpec",
    "TopicState",
    "build_topic_specs",
    "compare_topics",
    "format_retention",
]

TopicRole = Literal["main", "retry", "dlq"]
ProblemKind = Literal["missing", "partitions", "retention"]

_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic as the settings want it."""

    name: str
    role: TopicRole
    partitions: int
    retention_ms: int


@dataclass(frozen=True, slots=True)
class TopicState:
    """One topic as the broker describes it (``retention_ms`` None: not reported)."""

    name: str
    partitions: int
    retention_ms: int | None


@dataclass(frozen=True, slots=True)
class TopicProblem:
    """A difference between a spec and the cluster; ``fixable`` by ``capi topics``."""

    spec: TopicSpec
    kind: ProblemKind
    actual: str

    @property
    def fixable(self) -> bool:
        return self.kind != "partitions"

    def describe(self) -> str:
        spec = self.spec
        if self.kind == "missing":
            return (
                f"{spec.name}: missing (wanted {spec.partitions} partitions, "
                f"retention {format_retention(spec.retention_ms)})"
            )
        if self.kind == "retention":
            return (
                f"{spec.name}: retention.ms is {self.actual}, wanted {spec.retention_ms} "
                f"({format_retention(spec.retention_ms)})"
            )
        setting = "DLQ_PARTITIONS" if spec.role == "dlq" else "TOPIC_PARTITIONS"
        return (
            f"{spec.name}: has {self.actual} partitions, wanted {spec.partitions}; "
            f"set {setting}={self.actual} or change the topic by hand (capi topics never "
            "changes partitions: it would move keys between partitions)"
        )


def build_topic_specs(settings: CapiSettings) -> tuple[TopicSpec, ...]:
    """The main topic, one retry topic per delay and the dead-letter topic."""
    names = TopicNames(main=settings.topic_main, retry_tiers=len(settings.retry_delays_seconds))
    partitions, retention = settings.topic_partitions, settings.topic_retention_ms
    dlq_partitions = settings.dlq_partitions or partitions
    return (
        TopicSpec(names.main, "main", partitions, retention),
        *(TopicSpec(name, "retry", partitions, retention) for name in names.retries),
        TopicSpec(names.dlq, "dlq", dlq_partitions, settings.dlq_retention_ms),
    )


def compare_topics(
    specs: Sequence[TopicSpec], states: Mapping[str, TopicState]
) -> list[TopicProblem]:
    """Every difference, in the order of ``specs``; empty when the cluster matches."""
    problems: list[TopicProblem] = []
    for spec in specs:
        state = states.get(spec.name)
        if state is None:
            problems.append(TopicProblem(spec, "missing", "absent"))
            continue
        if state.partitions != spec.partitions:
            problems.append(TopicProblem(spec, "partitions", str(state.partitions)))
        if state.retention_ms != spec.retention_ms:
            actual = "unknown" if state.retention_ms is None else str(state.retention_ms)
            problems.append(TopicProblem(spec, "retention", actual))
    return problems


def format_retention(milliseconds: int) -> str:
    """``1209600000`` -> ``14d``; ``-1`` (Kafka: keep forever) -> ``forever``."""
    if milliseconds < 0:
        return "forever"
    if milliseconds % _DAY_MS == 0:
        return f"{milliseconds // _DAY_MS}d"
    if milliseconds % _HOUR_MS == 0:
        return f"{milliseconds // _HOUR_MS}h"
    return f"{milliseconds}ms"
