"""What happens to each event of a batch after it was prepared: send, then route the result.

sent                      -> row sent
retriable, attempts left  -> row retrying, forward to the next tier (due = now + delay)
retriable, last attempt   -> row dead, dead-letter topic
permanent                 -> row dead, dead-letter topic
tenant rate limited       -> forward to a tier without an attempt (due = block end)
expired (> 7 days)        -> row expired, nothing sent, nothing forwarded
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from capi_stream.errors import DecodeError
from consumers.delays import due_ms_for
from consumers.pipeline.routing import (
    Destination,
    deferral_topic,
    describe_failure,
    is_rate_limit,
    max_attempts,
    route_failure,
    topic_for,
    was_attempted,
)
from meta_capi.errors import MetaRateLimitedError
from meta_capi.server_event import ServerEvent
from storage.events import AttemptOutcome
from storage.models import EventStatus

if TYPE_CHECKING:
    from consumers.pipeline.processor import BatchProcessor, BatchReport, Item

logger = logging.getLogger(__name__)


def _where(item: Item) -> dict[str, object]:
    """A record's location, plus its event id and source once decoded (no customer data)."""
    where: dict[str, object] = {"record": item.incoming.location}
    if item.event is not None:
        where["event_id"] = str(item.event.event_id)
        where["source"] = str(item.event.source)
    return where


def _bump(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def _tally(report: BatchReport, item: Item, outcome: str) -> None:
    """Per-tenant outcome counts (metrics); an event without a known tenant is 'unknown'."""
    key = (str(item.tenant.tenant_id) if item.tenant else "unknown", outcome)
    report.by_tenant[key] = report.by_tenant.get(key, 0) + 1


class OutcomeBook:
    """Collects a batch's row outcomes and forwarded records."""

    def __init__(self, processor: BatchProcessor, report: BatchReport, now: datetime) -> None:
        self.processor = processor
        self.report = report
        self.now_ms = int(now.timestamp() * 1000)
        self.outcomes: list[AttemptOutcome] = []
        self._queued: dict[uuid.UUID, list[tuple[Item, ServerEvent]]] = defaultdict(list)

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
        """Row dead (``send_attempts`` = ``attempt`` if this attempt was made) + DLQ record."""
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
                )  # fmt: skip
            )
        self.report.forwards.append(
            self.processor.forward(
                item,
                topic=self.processor.topics.dlq,
                attempt=attempt,
                due_ms=None,
                failure=failure,
                now_ms=self.now_ms,
            )  # fmt: skip
        )
        extra = {**_where(item), "error_class": failure.error_class}
        if not isinstance(error, DecodeError):  # its text may quote raw field values
            extra["reason"] = failure.message[:300]
        logger.warning("dead-lettered", extra=extra)

    def queue(self, item: Item, event: ServerEvent) -> None:
        assert item.tenant is not None
        self._queued[item.tenant.tenant_id].append((item, event))

    def send_queued(self) -> None:
        work = {}
        for tenant_id, entries in self._queued.items():
            until = self.processor.blocks.blocked_until(str(tenant_id), self.now_ms)
            if until is not None:
                for item, _ in entries:
                    self._defer(item, until, "tenant rate limited by Meta")
                continue
            client = entries[0][0].tenant.client if entries[0][0].tenant else None
            assert client is not None
            work[tenant_id] = (client, [event for _, event in entries])
        if not work:
            return
        results = self.processor.sender.send(work)
        for tenant_id, result in results.items():
            self.report.send_seconds.append(result.seconds)
            entries = self._queued[tenant_id]
            for index, (item, _) in enumerate(entries):
                if result.outcome is None:
                    assert result.error is not None
                    self._failed(item, result.error)
                elif index in result.outcome.failed:
                    self._failed(item, result.outcome.failed[index])
                else:
                    self._sent(item, result.outcome.result.fbtrace_id)

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
        processor = self.processor
        attempt = item.incoming.context.attempt
        blocked_until: int | None = None
        if is_rate_limit(error):
            assert isinstance(error, MetaRateLimitedError)
            wait = error.retry_after_seconds or processor.options.rate_limit_default_seconds
            blocked_until = self.now_ms + round(wait * 1000)
            processor.blocks.block(str(item.tenant.tenant_id), blocked_until)
            if not was_attempted(error):
                self._defer(item, blocked_until, str(error))
                return
        route = route_failure(error, attempt, attempts_allowed=max_attempts(processor.topics))
        if route.destination is Destination.DEAD_LETTER:
            self.dead_letter(item, error, attempt=attempt, attempted=True)
            return
        item.done = True
        failure = describe_failure(error)
        _bump(self.report.failed_by_class, failure.error_class)
        due = due_ms_for(processor.options.retry_delays_seconds, route.next_attempt, self.now_ms)
        if blocked_until is not None:
            due = max(due, blocked_until)
        topic = topic_for(route, processor.topics)
        _bump(self.report.retried_by_topic, topic)
        _tally(self.report, item, "retried")
        # DEBUG: one line per event would flood a production log in a Meta outage; the dev
        # terminal shows them.
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "retrying",
                extra={**_where(item), "error_class": failure.error_class,
                       "reason": failure.message[:300], "next_topic": topic},
            )  # fmt: skip
        self.outcomes.append(
            AttemptOutcome(item.row_id, attempt, EventStatus.RETRYING, error=failure.message[:1000])
        )
        self.report.forwards.append(
            processor.forward(
                item,
                topic=topic,
                attempt=route.next_attempt,
                due_ms=due,
                failure=failure,
                now_ms=self.now_ms,
            )  # fmt: skip
        )

    def _defer(self, item: Item, until_ms: int, reason: str) -> None:
        """Wait out the tenant's block on a tier without spending an attempt."""
        item.done = True
        self.report.deferred += 1
        assert item.row_id is not None
        attempt = item.incoming.context.attempt
        self.outcomes.append(AttemptOutcome(item.row_id, 0, EventStatus.RETRYING, error=reason))
        failure = describe_failure(MetaRateLimitedError(reason, classification="deferred"))
        self.report.forwards.append(
            self.processor.forward(
                item,
                topic=deferral_topic(attempt, self.processor.topics),
                attempt=attempt,
                due_ms=until_ms,
                failure=failure,
                now_ms=self.now_ms,
            )  # fmt: skip
        )


__all__: Sequence[str] = ["OutcomeBook"]
