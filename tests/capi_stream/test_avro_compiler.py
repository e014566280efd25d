"""The schema compiler on small schemas: fastavro's bytes, or a refusal fastavro then handles."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

import fastavro
import pytest

from capi_stream.avro.compiled import compile_reader, compile_writer


def record_schema(*types: Any) -> dict[str, Any]:
    fields = [{"name": f"f{i}", "type": t} for i, t in enumerate(types)]
    return {"type": "record", "name": "R", "fields": fields}


def fastavro_bytes(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), record)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "values",
    [
        {"f0": None, "f1": None, "f2": 0, "f3": []},
        {"f0": "x", "f1": "ü" * 300, "f2": -(2**31), "f3": [-(2**62), 2**62 - 1, 0, -1]},
        {"f0": "", "f1": "", "f2": 2**31 - 1, "f3": [64, -65, 8191, -8192]},
    ],
)
def test_null_last_unions_ints_and_longs_match_fastavro(values: dict[str, Any]) -> None:
    schema = record_schema(
        ["string", "null"], ["null", "string"], "int", {"type": "array", "items": "long"}
    )
    expected = fastavro_bytes(schema, values)
    assert compile_writer(schema)(SimpleNamespace(**values)) == expected
    parsed = fastavro.parse_schema(schema)
    assert compile_reader(schema)(expected, 0) == fastavro.schemaless_reader(
        io.BytesIO(expected), parsed, parsed
    )


@pytest.mark.parametrize(
    "value",
    ["1", True, 2**31, -(2**31) - 1, 1.0],
)
def test_the_writer_refuses_what_fastavro_would_have_to_judge(value: Any) -> None:
    with pytest.raises((TypeError, OverflowError)):
        compile_writer(record_schema("int"))(SimpleNamespace(f0=value))


@pytest.mark.parametrize(
    "field_type",
    [
        "float",
        "bytes",
        "boolean",
        {"type": "enum", "name": "E", "symbols": ["A"]},
        {"type": "fixed", "name": "F", "size": 2},
        {"type": "int", "logicalType": "date"},
        {"type": "string", "logicalType": "no-such-type"},
        ["null", "string", "int"],
        ["string", "int"],
        "R",  # a named reference
    ],
)
def test_unsupported_types_are_refused_at_compile_time(field_type: Any) -> None:
    with pytest.raises(NotImplementedError):
        compile_writer(record_schema(field_type))
    with pytest.raises(NotImplementedError):
        compile_reader(record_schema(field_type))
