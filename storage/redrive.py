"""Repository of the ``redrive_audit`` table: what a redrive did to each dead letter.

``capi dlq redrive`` (``ops.dlq.redrive``) reads the history once at its start (which
coordinates were redriven already, how often each event was) and appends one row per
decision. The outcome names belong to the tool; this module stores them as given.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import RedriveAudit

__all__ = ["RedriveEntry", "RedriveHistory", "add_redrive_entries", "load_redrive_history"]


@dataclass(frozen=True, slots=True)
class RedriveHistory:
    """``done``: (partition, offset) of ``dlq_topic`` redriven; ``counts``: redrives per event."""

    done: set[tuple[int, int]]
    counts: dict[str, int]


def load_redrive_history(session: Session, dlq_topic: str, redriven: str) -> RedriveHistory:
    """The audit rows with outcome ``redriven``: coordinates of ``dlq_topic``, counts of all."""
    done = session.execute(
        select(RedriveAudit.dlq_partition, RedriveAudit.dlq_offset).where(
            RedriveAudit.dlq_topic == dlq_topic, RedriveAudit.outcome == redriven
        )
    )
    counted = session.execute(
        select(RedriveAudit.event_id, func.count())
        .where(RedriveAudit.outcome == redriven, RedriveAudit.event_id.is_not(None))
        .group_by(RedriveAudit.event_id)
    )
    return RedriveHistory(
        done={(row[0], row[1]) for row in done},
        counts={str(row[0]): int(row[1]) for row in counted},
    )


@dataclass(frozen=True, slots=True)
class RedriveEntry:
    """One decision about one dead letter at ``dlq_partition``/``dlq_offset``."""

    dlq_partition: int
    dlq_offset: int
    outcome: str
    reason: str | None
    event_id: str | None
    tenant_id: uuid.UUID | None


def add_redrive_entries(
    session: Session,
    *,
    actor: str,
    dlq_topic: str,
    target_topic: str,
    entries: Iterable[RedriveEntry],
) -> None:
    """Append one ``redrive_audit`` row per entry (committed by the caller's transaction)."""
    session.add_all(
        RedriveAudit(
            actor=actor,
            tenant_id=entry.tenant_id,
            event_id=entry.event_id,
            dlq_topic=dlq_topic,
            dlq_partition=entry.dlq_partition,
            dlq_offset=entry.dlq_offset,
            target_topic=target_topic,
            outcome=entry.outcome,
            reason=entry.reason,
        )
        for entry in entries
    )
