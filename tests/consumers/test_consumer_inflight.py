"""Where a replay starts when several uncommitted batches are rewound together."""

from __future__ import annotations

from consumers.inflight import earliest_offsets


def test_earliest_offsets_takes_the_smallest_first_offset_per_partition() -> None:
    in_flight = {("capi.events", 0): 100, ("capi.events", 1): 40}
    prepared = {("capi.events", 0): 180, ("capi.events.retry.1", 0): 7}
    assert earliest_offsets(in_flight, prepared) == {
        ("capi.events", 0): 100,
        ("capi.events", 1): 40,
        ("capi.events.retry.1", 0): 7,
    }


def test_earliest_offsets_of_nothing_is_empty() -> None:
    assert earliest_offsets() == {}
    assert earliest_offsets({}, {}) == {}
