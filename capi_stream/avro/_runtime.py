"""What the code ``compiled.py`` generates calls at run time, and the names it sees.

Varints, text, uuids, decimals and pydantic instances built without validation; ``GLOBALS``
is the namespace every generated function is compiled in.
"""

from __future__ import annotations

import decimal
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT32 = 2**31
_VARINTS = 1024  # precomputed unsigned varints: covers every zigzag length of < 512 bytes
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_VARINT = tuple(_varint(n) for n in range(_VARINTS))


def _long(n: int) -> bytes:
    if not -(2**63) <= n < 2**63:
        raise OverflowError(n)
    n = (n << 1) ^ (n >> 63)
    return _VARINT[n] if n < _VARINTS else _varint(n)


def _decimal(value: decimal.Decimal, quantum: decimal.Decimal, scale: int, limit: int) -> bytes:
    # Quantised first, as event_to_record does; then fastavro's precision check and sizing.
    unscaled = int(value.quantize(quantum).scaleb(scale))
    if not -limit < unscaled < limit:
        raise ValueError("decimal precision exceeds the schema's")
    size = (unscaled.bit_length() + 8) // 8
    return _long(size) + unscaled.to_bytes(size, "big", signed=True)


def _varint_tail(data: bytes, pos: int, first: int) -> tuple[int, int]:
    # At most 9 bytes (63 bits); longer ones are left to fastavro.
    value, shift = first & 0x7F, 7
    for byte in data[pos : pos + 8]:
        pos += 1
        if byte < 0x80:
            return value | byte << shift, pos
        value |= (byte & 0x7F) << shift
        shift += 7
    raise OverflowError("varint longer than 9 bytes, or cut short")


def _text(data: bytes, pos: int) -> tuple[str, int]:
    size = data[pos]
    if size > 127:
        size, pos = _varint_tail(data, pos + 1, size)
    else:
        pos += 1
    if size & 1:
        raise OverflowError("negative length")
    end = pos + (size >> 1)
    return data[pos:end].decode(), end


class _BadInput(ValueError):
    """Input the generated reader leaves to fastavro."""


def _uuid(text: str) -> str | uuid.UUID:
    # The model parses canonical text itself (in Rust); anything else as fastavro would.
    return text if _CANONICAL_UUID.fullmatch(text) else uuid.UUID(text)


_setattr = object.__setattr__
_new = object.__new__


def _trusted_uuid(text: str) -> uuid.UUID:
    # 8-4-4-4-12 hex digits only: other spellings go to the model, whose parser is not
    # uuid.UUID's. Built as uuid.UUID.__init__ ends, at a third of its cost.
    if len(text) != 36 or text[8] != "-" or text[13] != "-" or text[18] != "-" or text[23] != "-":
        raise _BadInput
    digits = text.replace("-", "")
    if len(digits) != 32 or not digits.isascii() or not digits.isalnum():  # int() takes more
        raise _BadInput
    value = object.__new__(uuid.UUID)
    _setattr(value, "int", int(digits, 16))
    _setattr(value, "is_safe", uuid.SafeUUID.unknown)
    return value


_INTERNED_UUIDS = 4096  # per field; a cache that fills up starts again


def _interned_uuid(cache: dict[str, uuid.UUID], text: str) -> uuid.UUID:
    # The generated code looks ``text`` up itself; this is the miss. UUIDs are immutable.
    if len(cache) >= _INTERNED_UUIDS:
        cache.clear()
    value = cache[text] = _trusted_uuid(text)
    return value


# The slots a pydantic instance keeps its state in, filled as ``model_construct`` ends.
_MODEL_SLOTS = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")


def model_parts(model: type) -> tuple[Any, ...]:
    # The slots' own descriptors (their __set__ skips object.__setattr__'s lookup), and the
    # fields set that every instance shares.
    parts = _PARTS.get(model)
    if parts is not None:
        return parts
    setters = [
        next(vars(klass)[slot] for klass in model.__mro__ if slot in vars(klass)).__set__
        for slot in _MODEL_SLOTS
    ]
    parts = _PARTS[model] = (*setters, set(model.model_fields))  # type: ignore[attr-defined]
    return parts


_PARTS: dict[type, tuple[Any, ...]] = {}


def construct_model(model: Any, values: dict[str, Any]) -> Any:
    """A pydantic model instance holding ``values`` (every field), without validation.

    What ``model_construct`` ends with, without its per-field default and alias handling
    (five times the cost); only for models without private attributes or a post-init hook
    (``tests/capi_stream/test_trusted_decode.py`` holds the event's models to that). Every
    instance of a model shares one fields set (every field): pydantic copies it before any
    change (``model_copy``), and frozen models change nothing in place. The trusted reader
    inlines the same steps.
    """
    set_dict, set_fields, set_extra, set_private, fields_set = model_parts(model)
    instance = _new(model)
    set_dict(instance, values)
    set_fields(instance, fields_set)
    set_extra(instance, None)
    set_private(instance, None)
    return instance


GLOBALS: dict[str, Any] = {
    "_EPOCH": _EPOCH,
    "_INT32": _INT32,
    "_VARINT": _VARINT,
    "_VARINTS": _VARINTS,
    "_varint": _varint,
    "_long": _long,
    "_decimal": _decimal,
    "_varint_tail": _varint_tail,
    "_text": _text,
    "_BadInput": _BadInput,
    "_UUID": uuid.UUID,
    "_uuid": _uuid,
    "_timedelta": timedelta,
    "_new": _new,
    "_trusted_uuid": _trusted_uuid,
    "_interned_uuid": _interned_uuid,
}
