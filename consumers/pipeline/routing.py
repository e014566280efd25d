"""Where a failed record goes: the next retry tier, the dead-letter topic, or nowhere (pause).

    DependencyUnavailableError  -> PAUSE        not the event's fault: no attempt burned,
                                                 nothing forwarded, the batch is replayed
    MetaRateLimitedError        -> DEFER        Meta throttled the tenant, not the event: the
                                                 tenant waits as long as Meta asks, the record
                                                 waits on a tier with its attempt unchanged
                                                 (bounded by Meta's 7-day window: past it the
                                                 event is recorded ``expired``, never sent)
    RetriableError (Meta 5xx, timeouts)
        attempt < max_attempts  -> RETRY        tier topic of attempt + 1
        attempt >= max_attempts -> DEAD_LETTER
    PermanentError (decode, validation, unknown tenant, configuration, Meta 4xx)
                                -> DEAD_LETTER  at once
    anything else (a bug)       -> DEAD_LETTER  the dead-letter limit stops a systemic bug

Pure functions of plain values: tested by a parametrize table, no broker needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from capi_stream.errors import DependencyUnavailableError, PermanentError, RetriableError
from capi_stream.kafka.topics import TopicNames
from consumers.headers import Failure
from meta_capi.errors import MetaAPIError, MetaRateLimitedError


class Destination(StrEnum):
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    PAUSE = "pause"
    DEFER = "defer"


@dataclass(frozen=True, slots=True)
class Route:
    """A routing decision; ``next_attempt`` is the attempt the forwarded record will make."""

    destination: Destination
    next_attempt: int


def max_attempts(topics: TopicNames) -> int:
    """The first delivery plus one attempt per retry tier (5 with four tiers)."""
    return 1 + topics.retry_tiers


def route_failure(error: BaseException, attempt: int, *, attempts_allowed: int) -> Route:
    """Decide where a record goes after ``attempt`` failed with ``error``."""
    if isinstance(error, DependencyUnavailableError):
        return Route(Destination.PAUSE, attempt)
    if is_rate_limit(error):
        return Route(Destination.DEFER, attempt)
    if isinstance(error, RetriableError) and attempt < attempts_allowed:
        return Route(Destination.RETRY, attempt + 1)
    if isinstance(error, RetriableError | PermanentError):
        return Route(Destination.DEAD_LETTER, attempt)
    return Route(Destination.DEAD_LETTER, attempt)


def topic_for(route: Route, topics: TopicNames) -> str:
    """The topic a routed record is produced to.

    Raises:
        ValueError: a PAUSE route is never forwarded.
    """
    if route.destination is Destination.DEAD_LETTER:
        return topics.dlq
    if route.destination is Destination.RETRY:
        return topics.retry_topic_for_attempt(min(route.next_attempt, 1 + topics.retry_tiers))
    if route.destination is Destination.DEFER:
        raise ValueError("a deferred record's tier depends on its wait: see deferral_topic")
    raise ValueError("a paused record is not forwarded")


def deferral_topic(wait_seconds: float, delays: Sequence[float], topics: TopicNames) -> str:
    """Tier topic for a record deferred without an attempt (its tenant is rate limited).

    The first tier whose own delay covers the wait: records on a tier are in due order
    (each waits the tier's fixed delay), so a deferred record due no later than that delay
    never holds up the other tenants' records queued behind it on the same partition. A
    wait longer than every tier's delay uses the last tier. The record's attempt number
    (its retry budget) is carried unchanged in its headers, whatever the tier.
    """
    wait_ms = round(wait_seconds * 1000)
    for offset, delay in enumerate(delays[: topics.retry_tiers]):
        if round(delay * 1000) >= wait_ms:
            return topics.retries[offset]
    return topics.retries[-1]


def is_rate_limit(error: BaseException) -> bool:
    """Meta throttled the caller (or the client's own block after a throttle answer)."""
    return isinstance(error, MetaRateLimitedError)


def describe_failure(error: BaseException) -> Failure:
    """The ``capi-error-*`` fields of an error: class, Meta code/subcode, message."""
    code: int | None = None
    subcode: int | None = None
    if isinstance(error, MetaAPIError):
        code, subcode = error.code, error.error_subcode
    else:
        found = getattr(error, "subcode", None)
        subcode = found if isinstance(found, int) else None
    return Failure(
        error_class=type(error).__name__,
        message=str(error) or repr(error),
        code=code,
        subcode=subcode,
    )
