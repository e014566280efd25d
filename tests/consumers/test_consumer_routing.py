"""Which failure goes where: the routing table of the worker."""

from __future__ import annotations

import pytest

from capi_stream.errors import (
    ConfigurationError,
    DecodeError,
    DependencyUnavailableError,
    EventValidationError,
    UnknownTenantError,
)
from capi_stream.kafka.topics import TopicNames
from consumers.pipeline.routing import (
    Destination,
    Route,
    deferral_topic,
    describe_failure,
    max_attempts,
    route_failure,
    topic_for,
)
from meta_capi.errors import (
    MetaCredentialsError,
    MetaPermanentError,
    MetaRateLimitedError,
    MetaRetryableError,
    MetaTimeoutError,
    classify_error,
)
from meta_capi.validation import MetaEventValidationError

TOPICS = TopicNames(main="t")
RETRY, DEAD, PAUSE = Destination.RETRY, Destination.DEAD_LETTER, Destination.PAUSE
DEFER = Destination.DEFER


@pytest.mark.parametrize(
    ("error", "attempt", "expected", "topic"),
    [
        (MetaRetryableError("5xx", status_code=500), 1, Route(RETRY, 2), "t.retry.1"),
        (MetaRetryableError("5xx", status_code=500), 2, Route(RETRY, 3), "t.retry.2"),
        (MetaTimeoutError("slow"), 3, Route(RETRY, 4), "t.retry.3"),
        # Throttling is never the event's fault: the attempt is kept, the record waits.
        # (its tier depends on the wait: ``deferral_topic``)
        (MetaRateLimitedError("17", code=17), 1, Route(DEFER, 1), None),
        (MetaRateLimitedError("17", code=17), 4, Route(DEFER, 4), None),
        (MetaRateLimitedError("4", code=4), 5, Route(DEFER, 5), None),
        (
            MetaRateLimitedError("local", classification="rate_limited_local"),
            2,
            Route(DEFER, 2),
            None,
        ),
        (classify_error(429, b"Too Many Requests"), 5, Route(DEFER, 5), None),
        (classify_error(400, {"error": {"code": 341}}), 3, Route(DEFER, 3), None),
        (MetaRetryableError("5xx"), 5, Route(DEAD, 5), "t.dlq"),
        (MetaRetryableError("redriven past the budget"), 6, Route(DEAD, 6), "t.dlq"),
        (MetaPermanentError("code 100", code=100), 1, Route(DEAD, 1), "t.dlq"),
        (MetaCredentialsError("190", code=190), 2, Route(DEAD, 2), "t.dlq"),
        (
            classify_error(400, {"error": {"code": 100, "error_subcode": 2804003}}),
            1,
            Route(DEAD, 1),
            "t.dlq",
        ),
        (classify_error(503, "Service Unavailable"), 1, Route(RETRY, 2), "t.retry.1"),
        (classify_error(400, {"error": {"code": 80004}}), 1, Route(DEFER, 1), None),
        (classify_error(400, {"error": {"code": 613}}), 5, Route(DEFER, 5), None),
        (DecodeError("garbage"), 1, Route(DEAD, 1), "t.dlq"),
        (EventValidationError("no value"), 1, Route(DEAD, 1), "t.dlq"),
        (MetaEventValidationError("too old", subcode=2804003), 2, Route(DEAD, 2), "t.dlq"),
        (UnknownTenantError("x"), 1, Route(DEAD, 1), "t.dlq"),
        (ConfigurationError("no meta"), 1, Route(DEAD, 1), "t.dlq"),
        (KeyError("a bug"), 1, Route(DEAD, 1), "t.dlq"),
        (DependencyUnavailableError("db down"), 1, Route(PAUSE, 1), None),
        (DependencyUnavailableError("db down"), 5, Route(PAUSE, 5), None),
    ],
)
def test_route_failure(
    error: BaseException, attempt: int, expected: Route, topic: str | None
) -> None:
    route = route_failure(error, attempt, attempts_allowed=max_attempts(TOPICS))
    assert route == expected
    if topic is None:
        with pytest.raises(ValueError):
            topic_for(route, TOPICS)
    else:
        assert topic_for(route, TOPICS) == topic


def test_five_attempts_with_four_tiers() -> None:
    assert max_attempts(TOPICS) == 5


DELAYS = (60.0, 300.0, 1800.0, 7200.0)


@pytest.mark.parametrize(
    ("wait", "delays", "topic"),
    [
        (0.0, DELAYS, "t.retry.1"),
        (59.9, DELAYS, "t.retry.1"),
        (60.0, DELAYS, "t.retry.1"),
        (60.5, DELAYS, "t.retry.2"),  # a 1-min tier would hold up what queues behind it
        (0.005 * 60, (0.3, 0.3, 0.3, 0.3), "t.retry.1"),  # float noise: same millisecond
        (1800.0, DELAYS, "t.retry.3"),
        (3600.0, DELAYS, "t.retry.4"),
        (86400.0, DELAYS, "t.retry.4"),  # longer than every tier: the last one
        (5.0, (), "t.retry.4"),
    ],
)
def test_a_deferred_record_waits_on_the_first_tier_whose_delay_covers_the_wait(
    wait: float, delays: tuple[float, ...], topic: str
) -> None:
    assert deferral_topic(wait, delays, TOPICS) == topic


def test_describe_failure_carries_meta_fields() -> None:
    error = classify_error(400, {"error": {"code": 100, "error_subcode": 2804009, "message": "m"}})
    failure = describe_failure(error)
    assert (failure.error_class, failure.code, failure.subcode) == (
        "MetaPermanentError",
        100,
        2804009,
    )
    validation = describe_failure(MetaEventValidationError("old", subcode=2804003))
    assert (validation.error_class, validation.subcode) == ("MetaEventValidationError", 2804003)
