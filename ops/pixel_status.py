"""Can a tenant's pixel deduplicate against capi-stream? The ``capi status`` pixel section.

Meta counts a browser and a server event once when they share ``event_name`` + ``event_id``
(or, browser first, ``fbp`` / ``external_id``). Per tenant and event name, over the events
sent to Meta in the last ``days``, this measures the share that carried ``fbp``, the share
that carried ``external_id``, and the share whose ``event_id`` follows the reproducible
scheme (``capi_stream.pixel``: a webhook source's UUIDv5 of its page key) rather than an id a
producing service supplied (``capi publish`` with its own ``event_id``, or source ``api``,
whose business key no page is told). A low reproducible share means the pixel cannot send
the same ``eventID``, and every conversion is counted twice.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from capi_stream.event import build_event_id
from capi_stream.pixel import PIXEL_SCHEMES
from storage.reports import iter_sent_pixel_rows

__all__ = ["PixelReadiness", "is_reproducible", "query_pixel_readiness"]


@dataclass(frozen=True, slots=True)
class PixelReadiness:
    """One tenant's sent events of one name, and what the pixel can match them with."""

    tenant_id: str
    event_name: str
    sent: int
    with_fbp: int
    with_external_id: int
    reproducible: int

    def shares(self) -> dict[str, float]:
        total = self.sent or 1
        return {
            "fbp": self.with_fbp / total,
            "external_id": self.with_external_id / total,
            "reproducible_event_id": self.reproducible / total,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "event_name": self.event_name,
            "sent": self.sent,
            "with_fbp": self.with_fbp,
            "with_external_id": self.with_external_id,
            "reproducible_event_id": self.reproducible,
            "share": self.shares(),
        }


def is_reproducible(tenant_id: uuid.UUID, source: str, source_event_id: str, event_id: str) -> bool:
    """True when a page holding the source's key can compute this ``event_id``."""
    if source not in PIXEL_SCHEMES:
        return False
    return event_id == build_event_id(tenant_id, source, source_event_id)


def query_pixel_readiness(
    session: Session,
    tenant_id: uuid.UUID | None = None,
    *,
    days: int = 7,
    now: datetime | None = None,
) -> list[PixelReadiness]:
    """Per tenant and event name, the shares above over events sent in the last ``days``.

    The event-id check is a UUIDv5 per row, done here rather than in SQL; rows are streamed.
    """
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in iter_sent_pixel_rows(session, since, tenant_id):
        tally = counts[(str(row.tenant_id), row.event_name)]
        tally[0] += 1
        tally[1] += row.carries_fbp
        tally[2] += row.carries_external_id
        tally[3] += is_reproducible(row.tenant_id, row.source, row.source_event_id, row.event_id)
    ordered = sorted(counts.items())
    return [PixelReadiness(tenant, name, *tally) for (tenant, name), tally in ordered]
