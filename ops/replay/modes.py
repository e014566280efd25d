"""How a replay bends the worker's pipeline without touching it: wrappers at its seams.

``BatchProcessor`` is used unchanged; the replay composes around its ``EventStore`` and its
Meta client:

* ``ReplayStore`` wraps the event store. It remembers which row belongs to which tenant and
  event name and what became of it (for the summary). With ``resend`` it reports rows as
  not yet sent, so the processor sends them again (same ``event_id``: Meta deduplicates
  within 48 h); the row of an event already sent is never downgraded by a failed resend.
  With ``no_send`` it records "sent" as ``skipped``: the row is rebuilt and hashed, and
  says that nothing went to Meta. An event that already has a dead letter
  (``ops.replay.dead_letters``) and fails again is recorded ``dead``, not ``retrying``: the
  replay forwards it nowhere, its one dead letter stays where it is.
* ``NoSendClient`` stands in for the Meta client with ``no_send``: it makes no call and
  accepts every event, so expiry, validation and the row upsert run exactly as usual.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from capi_stream.event import EventKey
from consumers.config import WorkerConfig
from consumers.pipeline.assembly import build_meta_client_factory
from consumers.pipeline.processor import EventStore
from consumers.pipeline.store import TenantRecord
from consumers.pipeline.tenants import MetaSender, TenantCache
from meta_capi.client import BatchOutcome, SendResult
from meta_capi.server_event import ServerEvent
from ops.replay.dead_letters import DeadLetterIndex
from storage.events import AttemptOutcome, StoredEvent
from storage.models import EventStatus

__all__ = [
    "NO_SEND_CREDENTIALS",
    "NoSendClient",
    "Outcome",
    "ReplayStore",
    "build_tenant_cache",
]


class Outcome:
    """The per-event outcomes a replay reports (and, prefixed ``would``, a dry run)."""

    SENT = "sent"
    RESENT = "resent"
    ALREADY_SENT = "already sent (skipped)"
    RECORDED = "recorded, not sent (--no-send)"
    EXPIRED = "expired (> 7 days, not sent)"
    RETRYING = "failed, forwarded to a retry tier"
    DEAD = "dead-lettered"
    DEAD_TENANT = "dead-lettered (tenant unknown or without Meta)"
    STILL_DEAD = "left in the DLQ (failed again; its dead letter is not copied again)"
    INVALID = "invalid: row dead, not forwarded (--no-send)"
    UNKNOWN_TENANT = "unknown tenant: no row, not forwarded (--no-send)"


NO_SEND_CREDENTIALS: Mapping[str, Any] = {"replay": "no-send"}


class NoSendClient:
    """A ``MetaSender`` that sends nothing and reports every event accepted."""

    def send_events(self, events: Sequence[ServerEvent]) -> BatchOutcome:
        count = len(events)
        return BatchOutcome(total=count, sent=list(range(count)), failed={}, result=SendResult())

    def close(self) -> None:
        return None


def build_tenant_cache(
    load: Callable[[uuid.UUID], TenantRecord | None],
    config: WorkerConfig,
    *,
    no_send: bool,
    build_client: Callable[[Mapping[str, Any]], MetaSender] | None = None,
) -> TenantCache:
    """The worker's tenant cache; with ``no_send`` every client is a ``NoSendClient`` and a
    tenant needs no Meta integration (nothing will be sent)."""
    ttl = config.tenant_cache_ttl_seconds
    if no_send:
        return TenantCache(_allow_missing_meta(load), lambda _c: NoSendClient(), ttl_seconds=ttl)

    return TenantCache(load, build_client or build_meta_client_factory(config), ttl_seconds=ttl)


def _allow_missing_meta(
    load: Callable[[uuid.UUID], TenantRecord | None],
) -> Callable[[uuid.UUID], TenantRecord | None]:
    """With ``--no-send`` a tenant needs no Meta integration: nothing will be sent."""

    def wrapped(tenant_id: uuid.UUID) -> TenantRecord | None:
        record = load(tenant_id)
        if record is None or record.meta_credentials:
            return record
        return replace(record, meta_credentials=NO_SEND_CREDENTIALS)

    return wrapped


class ReplayStore:
    """An ``EventStore`` around the worker's, for one replay run (see the module doc)."""

    def __init__(
        self,
        inner: EventStore,
        *,
        resend: bool,
        no_send: bool,
        dead_letters: DeadLetterIndex | None = None,
    ) -> None:
        self._inner = inner
        self._dead_letters = dead_letters if dead_letters is not None else DeadLetterIndex()
        self._resend = resend
        self._no_send = no_send
        self._rows: dict[uuid.UUID, tuple[EventKey, bool]] = {}
        self._status: dict[uuid.UUID, str] = {}

    def __getattr__(self, name: str) -> Any:
        # Store methods the pipeline may gain later pass through unchanged.
        if name == "_inner":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self._inner, name)

    def upsert(self, rows: Sequence[dict[str, object]]) -> dict[EventKey, StoredEvent]:
        if self._no_send:  # nothing will be sent: no attempt to count
            rows = [{**row, "send_attempts": 0} for row in rows]
        stored = self._inner.upsert(rows)
        for key, state in stored.items():
            self._rows[state.id] = (key, state.sent_to_meta)
        if self._resend:
            return {key: replace(state, sent_to_meta=False) for key, state in stored.items()}
        return stored

    def record(self, outcomes: Sequence[AttemptOutcome]) -> None:
        if self._no_send:
            outcomes = [
                AttemptOutcome(o.row_id, 0, EventStatus.SKIPPED, error="replay --no-send")
                if o.status == EventStatus.SENT
                else o
                for o in outcomes
            ]
        outcomes = [self._settle(o) for o in outcomes]
        for outcome in outcomes:
            self._status[outcome.row_id] = outcome.status
        self._inner.record(outcomes)

    def _settle(self, outcome: AttemptOutcome) -> AttemptOutcome:
        """A retry of an event already dead-lettered is not forwarded: its row is dead."""
        row = self._rows.get(outcome.row_id)
        if outcome.status != EventStatus.RETRYING or row is None:
            return outcome
        return (
            replace(outcome, status=EventStatus.DEAD) if row[0] in self._dead_letters else outcome
        )

    @property
    def no_row(self) -> str:
        """The outcome of an event that got no row: its tenant could not be resolved."""
        return Outcome.UNKNOWN_TENANT if self._no_send else Outcome.DEAD_TENANT

    def take_outcomes(self) -> dict[EventKey, str]:
        """What became of each row since the last call, keyed by (tenant_id, event_id)."""
        labels: dict[EventKey, str] = {}
        for row_id, (key, was_sent) in self._rows.items():
            label = _label(self._status.get(row_id), was_sent)
            labels[key] = Outcome.INVALID if self._no_send and label == Outcome.DEAD else label
        self._rows.clear()
        self._status.clear()
        return labels


def _label(status: str | None, was_sent: bool) -> str:
    if status is None:
        return Outcome.ALREADY_SENT
    if status == EventStatus.SENT:
        return Outcome.RESENT if was_sent else Outcome.SENT
    labels: dict[str, str] = {
        EventStatus.SKIPPED: Outcome.RECORDED,
        EventStatus.EXPIRED: Outcome.EXPIRED,
        EventStatus.RETRYING: Outcome.RETRYING,
        EventStatus.DEAD: Outcome.DEAD,
    }
    return labels.get(status, status)
