"""Why a replay never adds a second dead-letter copy of an event (``ops.replay.run``).

Replaying a range re-processes every event in it, including events the worker already
dead-lettered. Before this guard each real replay produced one more DLQ record of each of
them (2 dead letters became 4 after one replay), and ``capi dlq redrive`` would then send
the same event back once per copy.

The behaviour an analyst expects: a replay still re-processes such an event (the cause may
have been fixed since, e.g. the tenant now exists, and then it is sent), but when it fails
again the one dead letter already in the DLQ stays the single place to act on it
(``capi dlq show`` / ``redrive``): the replay forwards it nowhere, neither to the DLQ nor
to a retry tier (whose last hop would dead-letter it again), and records its row ``dead``.

Identity is ``(tenant_id, event_id)`` from the ``capi-tenant-id`` / ``capi-event-id``
headers that every dead letter of a decodable event carries. The index is read once per
replay with a full scan of the DLQ topic (kept small by the dead-letter limit) and grows
with the dead letters the replay itself produces, so a duplicate later in the same range
is not copied either. Undecodable records carry no identity; the replay leaves them alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from capi_stream.event import EventKey
from capi_stream.kafka.producer import OutgoingRecord
from consumers import headers as hop

__all__ = ["DeadLetterIndex", "ForwardSplit"]


def _key(tenant_id: str | None, event_id: str | None) -> EventKey | None:
    if not tenant_id or not event_id:
        return None
    try:
        return (uuid.UUID(tenant_id), event_id)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class ForwardSplit:
    """A batch's forwards: those to produce, and those dropped as already dead-lettered."""

    kept: list[OutgoingRecord]
    dropped: int
    new_dead: frozenset[EventKey]


@dataclass(slots=True)
class DeadLetterIndex:
    """The events that already have a dead letter, by ``(tenant_id, event_id)``."""

    keys: set[EventKey] = field(default_factory=set)

    @classmethod
    def from_headers(cls, letters: Iterable[tuple[str | None, str | None]]) -> DeadLetterIndex:
        """Built from ``(capi-tenant-id, capi-event-id)`` pairs of the DLQ's records."""
        found = (_key(tenant_id, event_id) for tenant_id, event_id in letters)
        return cls({key for key in found if key is not None})

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def split(self, forwards: Sequence[OutgoingRecord], dlq_topic: str) -> ForwardSplit:
        """Drop every forward of an event already in the DLQ; name the new dead letters.

        The index itself is not changed: call ``add`` once the kept ones were produced.
        """
        kept: list[OutgoingRecord] = []
        new_dead: set[EventKey] = set()
        dropped = 0
        for record in forwards:
            values = hop.header_map(record.headers)
            key = _key(values.get(hop.TENANT_ID), values.get(hop.EVENT_ID))
            if key is not None and (key in self.keys or key in new_dead):
                dropped += 1
                continue
            kept.append(record)
            if key is not None and record.topic == dlq_topic:
                new_dead.add(key)
        return ForwardSplit(kept, dropped, frozenset(new_dead))

    def add(self, keys: Iterable[EventKey]) -> None:
        self.keys.update(keys)
