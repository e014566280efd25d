"""Random (version 4) UUIDs for new rows, made in bulk.

``uuid.uuid4()`` costs a system call and a validating ``UUID.__init__`` per id, which the
worker paid for every new contact of a batch. These are the same ids: 122 random bits from
``os.urandom`` with the version and variant bits set, built without re-validation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from uuid import UUID, SafeUUID

__all__ = ["random_uuids"]

_CHUNK = 256  # ids per os.urandom call
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # the version nibble and the variant bits
_V4 = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant
_new = object.__new__
_set = object.__setattr__  # UUID forbids attribute writes; its __init__ makes them like this


def random_uuids() -> Iterator[UUID]:
    """An endless supply of version-4 UUIDs, as random as ``uuid.uuid4()``'s.

    Not thread-safe (a generator): take one per batch, not one per process.
    """
    from_bytes = int.from_bytes
    while True:
        raw = os.urandom(16 * _CHUNK)
        for start in range(0, len(raw), 16):
            value = _new(UUID)
            _set(value, "int", from_bytes(raw[start : start + 16]) & _CLEAR | _V4)
            _set(value, "is_safe", SafeUUID.unknown)
            yield value
