"""What happens to each event of a batch after it was prepared: send, then route the result.

sent                      -> row sent
retriable, attempts left  -> row retrying, forward to the next tier (due = now + delay)
retriable, last attempt   -> row dead, dead-letter topic
permanent                 -> row dead, dead-letter topic
Meta throttled the tenant -> tenant blocked as long as Meta asks; forward to a tier without
                             spending an attempt (due = block end)
tenant blocked            -> not sent; forward to a tier without an attempt (due = block end)
token refused (190), the
tenant's token rotated    -> forward to a tier without an attempt (due now), sent with the
since                        new token (a revoked old token is not the events' fault)
expired (> 7 days)        -> row expired, nothing sent, nothing forwarded

The batch's upsert counts an attempt on every row about to go to Meta (committed before the
send), so ``send_attempts`` stays true if the process dies mid-send; which tenants are
blocked is decided once, before that upsert (``blocked_tenants``), so counted = sent.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from capi_stream.errors import DecodeError
from capi_stream.kafka.producer import OutgoingRecord
from capi_stream.kafka.topics import TopicNames
from consumers.delays import TenantBlocks, due_ms_for
from consumers.headers import Failure
from consumers.pipeline.items import BatchReport, Item, PipelineOptions
from consumers.pipeline.routing import (
    Destination,
    deferral_topic,
    describe_failure,
    is_rate_limit,
    max_attempts,
    route_failure,
    topic_for,
)
from consumers.pipeline.sender import ConcurrentSender, TenantSend
from consumers.pipeline.tenants import TenantCache
from meta_capi.errors import MetaCredentialsError, MetaRateLimitedError
from meta_capi.server_event import ServerEvent
from storage.events import AttemptOutcome
from storage.models import EventStatus

logger = logging.getLogger(__name__)

# The reason of events held back (not sent) while their tenant is blocked.
_BLOCKED = MetaRateLimitedError("tenant rate limited by Meta", classification="deferred")


def _where(item: Item) -> dict[str, object]:
    """A record's location, plus its event id and source once decoded (no customer data)."""
    where: dict[str, object] = {"record": item.incoming.location}
    if item.event is not None:
        where["event_id"] = str(item.event.event_id)
        where["source"] = str(item.event.source)
    return where


@dataclass(frozen=True, slots=True)
class _Rotated:
    """A token error of a send whose credentials were rotated meanwhile."""

    error: MetaCredentialsError


def _error_of(result: TenantSend, index: int) -> BaseException | None:
    """The error of event ``index`` of one tenant's send, None if Meta accepted it."""
    if result.outcome is None:
        assert result.error is not None
        return result.error
    return result.outcome.failed.get(index)


def _bump(counter: dict[str, int], key: str, by: int = 1) -> None:
    counter[key] = counter.get(key, 0) + by


def _tally(report: BatchReport, item: Item, outcome: str) -> None:
    """Per-tenant outcome counts (metrics); an event without a known tenant is 'unknown'."""
    key = (str(item.tenant.tenant_id) if item.tenant else "unknown", outcome)
    report.by_tenant[key] = report.by_tenant.get(key, 0) + 1


class Forward(Protocol):
    def __call__(
        self,
        item: Item,
        *,
        topic: str,
        attempt: int,
        due_ms: int | None,
        failure: Failure,
        now_ms: int,
    ) -> OutgoingRecord: ...


@dataclass(frozen=True, slots=True)
class OutcomeServices:
    """What the book works with: handed in by the processor, never the processor itself."""

    clock: Callable[[], datetime]
    forward: Forward
    topics: TopicNames
    blocks: TenantBlocks
    tenants: TenantCache
    sender: ConcurrentSender
    options: PipelineOptions


class OutcomeBook:
    """Collects a batch's row outcomes and forwarded records."""

    def __init__(self, services: OutcomeServices, report: BatchReport, now: datetime) -> None:
        self.services = services
        self.report = report
        self.now_ms = int(now.timestamp() * 1000)
        self.outcomes: list[AttemptOutcome] = []
        self._queued: dict[uuid.UUID, list[tuple[Item, ServerEvent]]] = defaultdict(list)

    def _clock_ms(self) -> int:
        return int(self.services.clock().timestamp() * 1000)

    def expire(self, item: Item) -> None:
        item.done = True
        self.report.expired += 1
        _tally(self.report, item, "expired")
        assert item.row_id is not None
        self.outcomes.append(
            AttemptOutcome(item.row_id, 0, EventStatus.EXPIRED, error="older than 7 days")
        )
        logger.info("expired, not sent", extra={"record": item.incoming.location})

    def dead_letter(
        self, item: Item, error: BaseException, *, attempt: int, attempted: bool = False
    ) -> None:
        """Row dead (``send_attempts`` at least ``attempt`` if it was made) + DLQ record."""
        item.done = True
        failure = describe_failure(error)
        self.report.dead_lettered += 1
        _tally(self.report, item, "dead_lettered")
        _bump(self.report.failed_by_class, failure.error_class)
        if item.row_id is not None:
            self.outcomes.append(
                AttemptOutcome(
                    item.row_id,
                    attempt if attempted else 0,
                    EventStatus.DEAD,
                    error=failure.message[:1000],
                )
            )
        self.report.forwards.append(
            self.services.forward(
                item,
                topic=self.services.topics.dlq,
                attempt=attempt,
                due_ms=None,
                failure=failure,
                now_ms=self.now_ms,
            )
        )
        extra = {**_where(item), "error_class": failure.error_class}
        if not isinstance(error, DecodeError):  # its text may quote raw field values
            extra["reason"] = failure.message[:300]
        logger.warning("dead-lettered", extra=extra)

    def queue(self, item: Item, event: ServerEvent) -> None:
        assert item.tenant is not None
        self._queued[item.tenant.tenant_id].append((item, event))

    def blocked_tenants(self, tenant_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
        """Of these tenants, those Meta's throttling blocks now -> block end (Unix ms)."""
        now_ms = self._clock_ms()
        blocked = {}
        for tenant_id in tenant_ids:
            until = self.services.blocks.blocked_until(str(tenant_id), now_ms)
            if until is not None:
                blocked[tenant_id] = until
        return blocked

    def send_queued(self, blocked: Mapping[uuid.UUID, int]) -> None:
        """Send each tenant's queued events, except ``blocked`` tenants' (they wait for the
        block's end on a tier), then route every result."""
        services = self.services
        contexts = {}
        for tenant_id, entries in self._queued.items():
            until = blocked.get(tenant_id)
            if until is not None:
                for item, _ in entries:
                    self._defer(item, until, _BLOCKED)
                _bump(self.report.deferred_by_tenant, str(tenant_id), len(entries))
                continue
            context = entries[0][0].tenant
            assert context is not None
            contexts[tenant_id] = context
        self.report.paused_tenants = services.blocks.active(self._clock_ms())
        if not contexts:
            return
        with services.tenants.lease(contexts) as clients:
            work = {
                tenant_id: (clients[tenant_id], [event for _, event in self._queued[tenant_id]])
                for tenant_id in contexts
            }
            results = services.sender.send(work)
        for tenant_id, result in results.items():
            self.report.send_seconds.append(result.seconds)
            entries = self._queued[tenant_id]
            errors: list[BaseException | _Rotated | None] = [
                _error_of(result, index) for index in range(len(entries))
            ]
            if any(isinstance(e, MetaCredentialsError) for e in errors) and (
                services.tenants.rotated_since(tenant_id, clients[tenant_id])
            ):
                # Refused for a token rotated (and revoked) meanwhile: not the events' fault;
                # they go again at once with the new token, their attempt kept.
                errors = [_Rotated(e) if isinstance(e, MetaCredentialsError) else e for e in errors]
            throttled = False
            for (item, _), error in zip(entries, errors, strict=True):
                if error is None:
                    assert result.outcome is not None
                    self._sent(item, result.outcome.result.fbtrace_id)
                elif isinstance(error, _Rotated):
                    self._defer(item, self._clock_ms(), error.error)
                else:
                    throttled = throttled or is_rate_limit(error)
                    self._failed(item, error)
            if throttled:
                _bump(self.report.throttled_by_tenant, str(tenant_id))
        self.report.paused_tenants = services.blocks.active(self._clock_ms())

    def _sent(self, item: Item, fbtrace_id: str | None) -> None:
        item.done = True
        self.report.sent += 1
        _tally(self.report, item, "sent")
        assert item.row_id is not None
        attempt = item.incoming.context.attempt
        self.outcomes.append(
            AttemptOutcome(item.row_id, attempt, EventStatus.SENT, fbtrace_id=fbtrace_id)
        )

    def _failed(self, item: Item, error: BaseException) -> None:
        assert item.row_id is not None and item.tenant is not None
        services = self.services
        attempt = item.incoming.context.attempt
        route = route_failure(error, attempt, attempts_allowed=max_attempts(services.topics))
        if route.destination is Destination.DEFER:
            # Throttling is the tenant's volume, not the event's fault: block the tenant for
            # as long as Meta asks and keep the event's attempt (Meta: once limited, stop
            # calling; more calls push the block further out).
            assert isinstance(error, MetaRateLimitedError)
            wait = error.retry_after_seconds or services.options.rate_limit_default_seconds
            # From now, not from the batch's start: the block must outlast the client's own.
            blocked_until = self._clock_ms() + round(wait * 1000)
            services.blocks.block(str(item.tenant.tenant_id), blocked_until)
            self._defer(item, blocked_until, error)
            return
        if route.destination is Destination.DEAD_LETTER:
            self.dead_letter(item, error, attempt=attempt, attempted=True)
            return
        item.done = True
        failure = describe_failure(error)
        _bump(self.report.failed_by_class, failure.error_class)
        due = due_ms_for(services.options.retry_delays_seconds, route.next_attempt, self.now_ms)
        topic = topic_for(route, services.topics)
        _bump(self.report.retried_by_topic, topic)
        _tally(self.report, item, "retried")
        # DEBUG: one line per event would flood a production log in a Meta outage; the dev
        # terminal shows them.
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "retrying",
                extra={
                    **_where(item),
                    "error_class": failure.error_class,
                    "reason": failure.message[:300],
                    "next_topic": topic,
                },
            )
        self.outcomes.append(
            AttemptOutcome(item.row_id, attempt, EventStatus.RETRYING, error=failure.message[:1000])
        )
        self.report.forwards.append(
            services.forward(
                item,
                topic=topic,
                attempt=route.next_attempt,
                due_ms=due,
                failure=failure,
                now_ms=self.now_ms,
            )
        )

    def _defer(self, item: Item, until_ms: int, error: BaseException) -> None:
        """Wait out the tenant's block on a tier without spending an attempt.

        The row's ``send_attempts`` is left as the upsert counted it (a throttled send did
        reach Meta); the record's attempt number (its retry budget) is unchanged.
        """
        item.done = True
        self.report.deferred += 1
        assert item.row_id is not None
        attempt = item.incoming.context.attempt
        services = self.services
        wait_seconds = max(0, until_ms - self._clock_ms()) / 1000
        topic = deferral_topic(wait_seconds, services.options.retry_delays_seconds, services.topics)
        failure = describe_failure(error)
        self.outcomes.append(
            AttemptOutcome(item.row_id, 0, EventStatus.RETRYING, error=failure.message[:1000])
        )
        self.report.forwards.append(
            services.forward(
                item,
                topic=topic,
                attempt=attempt,
                due_ms=until_ms,
                failure=failure,
                now_ms=self.now_ms,
            )
        )


__all__: Sequence[str] = ["OutcomeBook"]
