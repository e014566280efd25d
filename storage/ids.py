"""Random (version 4) UUIDs for new rows, made in bulk.

``uuid.uuid4()`` costs a system call and a validating ``UUID.__init__`` per id, which the
worker paid for every new contact of a batch. These are the same ids: 122 random bits from
``os.urandom`` with the version and variant bits set, built without re-validation.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from uuid import UUID, SafeUUID

__all__ = ["random_uuids"]

_CHUNK = 256  # ids per os.urandom call
# A UUID's int as two 64-bit halves (struct unpacks them in C, cheaper than a slice and an
# int.from_bytes per id): the version nibble is in the high half, the variant bits in the low.
_HALVES = struct.Struct(">QQ")
_HIGH_CLEAR, _HIGH_V4 = 0xFFFF_FFFF_FFFF_0FFF, 0x4000
_LOW_CLEAR, _LOW_VARIANT = 0x3FFF_FFFF_FFFF_FFFF, 0x8000 << 48  # RFC 4122 variant
_new = object.__new__
_set = object.__setattr__  # UUID forbids attribute writes; its __init__ makes them like this
_UNKNOWN = SafeUUID.unknown


def random_uuids() -> Iterator[UUID]:
    """An endless supply of version-4 UUIDs, as random as ``uuid.uuid4()``'s.

    Not thread-safe (a generator): take one per batch, not one per process.
    """
    while True:
        for high, low in _HALVES.iter_unpack(os.urandom(16 * _CHUNK)):
            value = _new(UUID)
            _set(
                value,
                "int",
                (high & _HIGH_CLEAR | _HIGH_V4) << 64 | low & _LOW_CLEAR | _LOW_VARIANT,
            )
            _set(value, "is_safe", _UNKNOWN)
            yield value
