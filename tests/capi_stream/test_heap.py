"""`capi serve` and `capi worker` freeze their start-up heap and collect young objects rarely."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from capi_stream.heap import YOUNG_GENERATION_THRESHOLD, tune_for_service


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    older = gc.get_threshold()[1:]
    tune_for_service()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, *older)
