"""`capi worker` tunes the garbage collector for its batch loop before it starts."""

from __future__ import annotations

import gc

from consumers.cli import _tune_gc


def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    threshold = gc.get_threshold()
    try:
        _tune_gc()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (100_000, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
