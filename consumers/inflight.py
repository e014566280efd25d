"""The batch in flight: sent and recorded on the finisher thread while the next is prepared.

The worker's loop prepares batch N+1 (decode, contacts, hash) while batch N is upserted, sent
to Meta, recorded and forwarded on one finisher thread. The loop alone commits, in order,
and only once the finisher reported success; an outage rewinds every batch not committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass

from capi_stream.kafka.message import PartitionKey
from consumers.pipeline.processor import BatchReport, Incoming

__all__ = ["InFlight", "earliest_offsets"]


@dataclass(slots=True)
class InFlight:
    """A prepared batch on the finisher thread, and what committing it needs."""

    future: Future[BatchReport]
    handled: list[Incoming]
    first: dict[PartitionKey, int]
    records: int
    committed: bool = False


def earliest_offsets(*offsets: Mapping[PartitionKey, int]) -> dict[PartitionKey, int]:
    """Per partition, the smallest first offset: where a replay of all these batches starts."""
    merged: dict[PartitionKey, int] = {}
    for mapping in offsets:
        for key, offset in mapping.items():
            merged[key] = min(offset, merged.get(key, offset))
    return merged
