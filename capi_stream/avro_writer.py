"""A schema-compiled Avro binary writer for the event schema (the publish hot path).

``fastavro.schemaless_writer`` resolves every union branch by validating the value against
each candidate and converts logical types through generic hooks: about 50 us for one event,
the largest single cost of a webhook. ``compile_writer`` walks the schema once and returns
a tree of closures that writes the same bytes directly. It covers what the event schema
uses (records, nullable unions, arrays, maps, strings, numbers, booleans and the uuid,
timestamp-millis and bytes-decimal logical types); anything else raises
``UnsupportedSchemaError`` and the codec keeps fastavro. Tests compare both byte for byte.
"""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

__all__ = ["UnsupportedSchemaError", "compile_writer"]

Write = Callable[[Any, bytearray], None]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UnsupportedSchemaError(ValueError):
    """The schema uses a construct this writer does not compile."""


def _long(value: int, out: bytearray) -> None:
    value = (value << 1) ^ (value >> 63)  # zigzag
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _int(value: int, out: bytearray) -> None:
    if not -(2**31) <= value < 2**31:  # fastavro refuses it too
        raise ValueError(f"{value} does not fit an Avro int")
    _long(value, out)


def _checked_long(value: int, out: bytearray) -> None:
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"{value} does not fit an Avro long")
    _long(value, out)


def _string(value: str, out: bytearray) -> None:
    data = value.encode()
    _long(len(data), out)
    out += data


def _bytes(value: bytes, out: bytearray) -> None:
    _long(len(value), out)
    out += value


def _boolean(value: bool, out: bytearray) -> None:
    out.append(1 if value else 0)


def _uuid(value: uuid.UUID | str, out: bytearray) -> None:
    _string(str(value), out)


def _timestamp_millis(value: datetime | int, out: bytearray) -> None:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # as fastavro does: a naive time is local time
            value = int(time.mktime(value.timetuple())) * 1000 + value.microsecond // 1000
        else:
            delta = value - _EPOCH
            value = (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000
    _long(value, out)


def _decimal(scale: int, precision: int) -> Write:
    def write(value: Decimal | bytes, out: bytearray) -> None:
        if not isinstance(value, Decimal):
            _bytes(value, out)
            return
        sign, digits, exponent = value.as_tuple()
        if len(digits) > precision or not isinstance(exponent, int) or exponent + scale < 0:
            raise ValueError("decimal does not fit the schema's precision and scale")
        unscaled = int("".join(map(str, digits)) or "0") * 10 ** (exponent + scale)
        size = (unscaled.bit_length() + 8) // 8
        _bytes((-unscaled if sign else unscaled).to_bytes(size, "big", signed=True), out)

    return write


_PRIMITIVES: dict[str, Write] = {
    "string": _string,
    "bytes": _bytes,
    "int": _int,
    "long": _checked_long,
    "boolean": _boolean,
    "float": lambda value, out: out.extend(struct.pack("<f", value)),
    "double": lambda value, out: out.extend(struct.pack("<d", value)),
}


def _nullable(inner: Write, null_index: int) -> Write:
    other = 1 - null_index

    def write(value: Any, out: bytearray) -> None:
        if value is None:
            out.append(null_index * 2)  # zigzag of the branch index: 0 or 2
        else:
            out.append(other * 2)
            inner(value, out)

    return write


def _array(item: Write) -> Write:
    def write(values: list[Any], out: bytearray) -> None:
        if values:
            _long(len(values), out)
            for value in values:
                item(value, out)
        out.append(0)

    return write


def _map(item: Write) -> Write:
    def write(values: Mapping[str, Any], out: bytearray) -> None:
        if values:
            _long(len(values), out)
            for key, value in values.items():
                _string(key, out)
                item(value, out)
        out.append(0)

    return write


def _record(fields: list[tuple[str, Any, Write]]) -> Write:
    def write(record: Mapping[str, Any], out: bytearray) -> None:
        for name, default, field_writer in fields:
            field_writer(record.get(name, default), out)

    return write


def _compile(schema: Any) -> Write:
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _PRIMITIVES[schema]
        raise UnsupportedSchemaError(f"type {schema!r}")
    if isinstance(schema, list):
        if len(schema) == 2 and "null" in schema:
            null_index = schema.index("null")
            return _nullable(_compile(schema[1 - null_index]), null_index)
        raise UnsupportedSchemaError("a union other than [null, T]")
    kind, logical = schema.get("type"), schema.get("logicalType")
    if logical == "uuid" and kind == "string":
        return _uuid
    if logical == "timestamp-millis" and kind == "long":
        return _timestamp_millis
    if logical == "decimal" and kind == "bytes":
        return _decimal(int(schema.get("scale", 0)), int(schema["precision"]))
    if kind == "record":
        fields = schema["fields"]
        return _record([(f["name"], f.get("default"), _compile(f["type"])) for f in fields])
    if kind == "array":
        return _array(_compile(schema["items"]))
    if kind == "map":
        return _map(_compile(schema["values"]))
    if logical is None and isinstance(kind, str | list):
        return _compile(kind)
    raise UnsupportedSchemaError(f"type {kind!r} ({logical})")


def compile_writer(schema: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bytes]:
    """``write(record) -> bytes`` for ``schema`` (a plain ``.avsc`` dict, not fastavro-parsed).

    Raises:
        UnsupportedSchemaError: the schema uses something this writer does not compile.
    """
    write = _compile(dict(schema))

    def encode(record: Mapping[str, Any]) -> bytes:
        out = bytearray()
        write(record, out)
        return bytes(out)

    return encode
