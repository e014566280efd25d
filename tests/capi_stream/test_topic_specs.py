"""`capi topics`' plan: the specs the settings ask for and how a cluster differs from them."""

from __future__ import annotations

import pytest

from capi_stream.kafka.topic_specs import (
    ProblemKind,
    TopicSpec,
    TopicState,
    build_topic_specs,
    compare_topics,
    format_retention,
)
from capi_stream.settings import CapiSettings

MAIN = TopicSpec("capi.events", "main", 12, 1_209_600_000)
DLQ = TopicSpec("capi.events.dlq", "dlq", 3, 2_592_000_000)


def test_specs_follow_the_settings() -> None:
    settings = CapiSettings(
        topic_main="orders",
        retry_delays_seconds=[5.0, 10.0],
        topic_partitions=4,
        topic_retention_ms=1000,
        dlq_partitions=2,
        dlq_retention_ms=2000,
    )
    assert build_topic_specs(settings) == (
        TopicSpec("orders", "main", 4, 1000),
        TopicSpec("orders.retry.1", "retry", 4, 1000),
        TopicSpec("orders.retry.2", "retry", 4, 1000),
        TopicSpec("orders.dlq", "dlq", 2, 2000),
    )


def test_dlq_partitions_default_to_topic_partitions() -> None:
    specs = build_topic_specs(CapiSettings(topic_partitions=7))
    assert {spec.partitions for spec in specs} == {7}
    assert [spec.role for spec in specs] == ["main", "retry", "retry", "retry", "retry", "dlq"]


@pytest.mark.parametrize(
    ("state", "kinds"),
    [
        (None, ["missing"]),
        (TopicState("capi.events", 12, 1_209_600_000), []),
        (TopicState("capi.events", 6, 1_209_600_000), ["partitions"]),
        (TopicState("capi.events", 12, 604_800_000), ["retention"]),
        (TopicState("capi.events", 12, None), ["retention"]),
        (TopicState("capi.events", 24, 1), ["partitions", "retention"]),
    ],
)
def test_compare_names_each_difference(state: TopicState | None, kinds: list[ProblemKind]) -> None:
    states = {} if state is None else {state.name: state}
    assert [problem.kind for problem in compare_topics([MAIN], states)] == kinds


def test_only_partitions_cannot_be_fixed_and_the_message_names_the_setting() -> None:
    problems = compare_topics(
        [MAIN, DLQ],
        {
            MAIN.name: TopicState(MAIN.name, 6, 1),
            DLQ.name: TopicState(DLQ.name, 1, DLQ.retention_ms),
        },
    )
    assert [(p.spec.name, p.kind, p.fixable) for p in problems] == [
        (MAIN.name, "partitions", False),
        (MAIN.name, "retention", True),
        (DLQ.name, "partitions", False),
    ]
    assert "set TOPIC_PARTITIONS=6" in problems[0].describe()
    assert "retention.ms is 1, wanted 1209600000 (14d)" in problems[1].describe()
    assert "set DLQ_PARTITIONS=1" in problems[2].describe()
    missing = compare_topics([DLQ], {})[0].describe()
    assert missing == "capi.events.dlq: missing (wanted 3 partitions, retention 30d)"


@pytest.mark.parametrize(
    ("milliseconds", "text"),
    [(1_209_600_000, "14d"), (7_200_000, "2h"), (1500, "1500ms"), (-1, "forever")],
)
def test_format_retention(milliseconds: int, text: str) -> None:
    assert format_retention(milliseconds) == text
