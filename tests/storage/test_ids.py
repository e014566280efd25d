"""``storage.ids``: the cheap ids are the same objects ``uuid.uuid4()`` makes."""

from __future__ import annotations

import copy
import pickle
import uuid
from itertools import islice

from storage.ids import random_uuids


def test_random_uuids_are_version_4_and_behave_like_parsed_ones() -> None:
    ids = list(islice(random_uuids(), 1000))  # more than one os.urandom chunk
    assert len(set(ids)) == len(ids)
    for made in ids:
        parsed = uuid.UUID(str(made))
        assert (made.version, made.variant) == (4, uuid.RFC_4122)
        assert made == parsed and hash(made) == hash(parsed)
        assert made.bytes == parsed.bytes and made.is_safe == parsed.is_safe
    made = ids[0]
    assert pickle.loads(pickle.dumps(made)) == made == copy.deepcopy(made)
    assert sorted(ids) == sorted(ids, key=str)  # ordered as the text, like any UUID


def test_random_uuids_use_all_122_random_bits() -> None:
    ids = list(islice(random_uuids(), 2000))
    fixed = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
    seen_ones = seen_zeros = 0
    for made in ids:
        seen_ones |= made.int
        seen_zeros |= ~made.int
    # Every non-fixed bit was 1 in some id and 0 in another.
    assert seen_ones & fixed == fixed
    assert seen_zeros & fixed == fixed
