"""`capi serve` tunes the garbage collector before it serves, as `capi worker` does."""

from __future__ import annotations

import gc

from producers.cli import _freeze_startup_objects


def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    threshold = gc.get_threshold()
    try:
        _freeze_startup_objects()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (100_000, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
