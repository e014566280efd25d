"""Avro encoding of ConversionEvent: single-object encoding, or Confluent's wire format.

Single-object encoding (Avro spec): ``C3 01`` + 8-byte little-endian CRC-64-AVRO fingerprint
of the writer schema's canonical form + the binary body. The fingerprint selects the writer
schema among the versions this reader knows, and Avro schema resolution fills fields added
since with their defaults. With a schema registry, Confluent's framing is used instead:
``00`` + 4-byte big-endian schema id + body.

Bodies written with the reader schema itself (every message we produce) go through code
compiled from that schema (``avro_compiler``), about four times faster than fastavro; older
writer schemas, registry-fetched ones and anything the compiled code declines use fastavro.
"""

from __future__ import annotations

import io
import json
import logging
import struct
from collections.abc import Iterable, Mapping
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form
from prometheus_client import Counter

from capi_stream.avro.compiled import compile_reader, compile_writer
from capi_stream.avro.trusted import EVENT_RULES
from capi_stream.errors import DecodeError
from capi_stream.event import ConversionEvent

logger = logging.getLogger(__name__)

# Registered by each process's metrics registry (worker, webhook app), not a global one.
AVRO_FALLBACKS = Counter(
    "capi_avro_fallbacks",
    "Records the compiled Avro code declined and fastavro handled (encode or decode)",
    ["direction"],
    registry=None,
)
_warned: set[str] = set()


def _fell_back(direction: str, exc: Exception) -> None:
    """Count a fallback and say so once per direction: a steady count means a compiler gap."""
    AVRO_FALLBACKS.labels(direction=direction).inc()
    if direction not in _warned:
        _warned.add(direction)
        # The type only: the message may quote record values.
        logger.warning(
            "compiled Avro %s declined a record (%s); fastavro handled it. Counted in "
            "capi_avro_fallbacks_total, logged once per process",
            direction,
            type(exc).__name__,
        )


SCHEMA_DIR = Path(str(resources.files("schemas"))) / "avro"
CURRENT_SCHEMA_PATH = SCHEMA_DIR / "conversion_event.avsc"
HISTORY_DIR = SCHEMA_DIR / "history"

SINGLE_OBJECT_MARKER = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_VALUE_SCALE = Decimal("0.0001")  # the schema's decimal scale (4)

Schema = dict[str, Any]


def load_schema(path: Path = CURRENT_SCHEMA_PATH) -> Schema:
    """Read an ``.avsc`` file as a plain dict."""
    loaded: Schema = json.loads(path.read_text())
    return loaded


def schema_fingerprint(schema: Schema) -> bytes:
    """The 8-byte little-endian CRC-64-AVRO fingerprint used by single-object encoding."""
    canonical = to_parsing_canonical_form(fastavro.parse_schema(schema))
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))[::-1]


def event_to_record(event: ConversionEvent) -> dict[str, Any]:
    """The Avro record (a dict) of an event; money is quantised to the schema's scale."""
    record = event.model_dump()
    value = record["custom_data"]["value"]
    if value is not None:
        record["custom_data"]["value"] = value.quantize(_VALUE_SCALE)
    return record


def record_to_event(record: Mapping[str, Any]) -> ConversionEvent:
    """Validate a decoded Avro record back into an event.

    A record read with the reader schema has only its fields, and those mirror the model's (a
    test holds them together), so pydantic's scan for unknown keys is skipped: about 10% of
    the validation.

    Raises:
        DecodeError: the record does not satisfy the event model.
    """
    try:
        return ConversionEvent.model_validate(record, extra="ignore")
    except ValueError as exc:
        raise DecodeError(f"decoded record is not a valid ConversionEvent: {exc}") from exc


class _ReaderSchema:
    """The reader schema parsed for fastavro, plus its compiled codec (see avro_compiler).

    The compiled functions serve messages written with this very schema. Whenever they raise,
    fastavro runs instead and has the last word, so results and errors stay fastavro's.
    """

    def __init__(self, schema: Schema, header: bytes) -> None:
        self.parsed = fastavro.parse_schema(schema)
        self._header = header
        try:
            self._write = compile_writer(schema, prefix=header)
            self._read = compile_reader(schema)
        except NotImplementedError:  # a type the compiler lacks: fastavro only
            self._write, self._read = _decline, _decline
        try:
            self._read_trusted: Any = compile_reader(schema, EVENT_RULES)
        except (NotImplementedError, KeyError):  # not the event schema: validate every record
            self._read_trusted = _decline

    def encode(self, event: ConversionEvent) -> bytes:
        try:
            return self._write(event)
        except Exception as exc:  # anything the compiled code declines: fastavro has the last word
            if self._write is not _decline:
                _fell_back("encode", exc)
            buffer = io.BytesIO()
            buffer.write(self._header)
            fastavro.schemaless_writer(buffer, self.parsed, event_to_record(event))
            return buffer.getvalue()

    def read(self, data: bytes, start: int) -> dict[str, Any]:
        """The record of a body written with this schema, from ``data[start]`` on."""
        try:
            return self._read(data, start)
        except Exception as exc:
            record = _read_body(data[start:], self.parsed, self.parsed)  # garbage raises here
            if self._read is not _decline:
                _fell_back("decode", exc)  # fastavro read what the compiled code declined
            return record

    def read_event(self, data: bytes, start: int) -> ConversionEvent:
        """The event of a body written with this schema, validated once, while it is read.

        The trusted reader checks the model's rules itself (``trusted.py``); a body it declines
        (a broken rule, or garbage) is read again and validated by pydantic, which decides.
        """
        try:
            event: ConversionEvent = self._read_trusted(data, start)
        except Exception:  # the plain path below gives the definitive event or error
            return record_to_event(self.read(data, start))
        return event


def _decline(*_: object) -> Any:
    raise NotImplementedError


class EventCodec(Protocol):
    """Turns events into message values and back."""

    def encode(self, event: ConversionEvent) -> bytes: ...

    def decode(self, data: bytes) -> ConversionEvent: ...


class SingleObjectCodec:
    """Avro single-object encoding; reads every schema version it was given."""

    def __init__(self, reader_schema: Schema, writer_schemas: Iterable[Schema] = ()) -> None:
        self._fingerprint = schema_fingerprint(reader_schema)
        self._reader = _ReaderSchema(reader_schema, SINGLE_OBJECT_MARKER + self._fingerprint)
        self._writers: dict[bytes, Any] = {
            schema_fingerprint(schema): fastavro.parse_schema(schema) for schema in writer_schemas
        }

    def encode(self, event: ConversionEvent) -> bytes:
        return self._reader.encode(event)

    def encode_with(self, schema: Schema, record: Mapping[str, Any]) -> bytes:
        """Encode a raw record under another (e.g. older) schema; for tests and migrations."""
        buffer = io.BytesIO()
        buffer.write(SINGLE_OBJECT_MARKER + schema_fingerprint(schema))
        fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), dict(record))
        return buffer.getvalue()

    def decode(self, data: bytes) -> ConversionEvent:
        if len(data) < 10 or data[:2] != SINGLE_OBJECT_MARKER:
            raise DecodeError("not an Avro single-object encoded message (no C3 01 marker)")
        fingerprint = data[2:10]
        if fingerprint == self._fingerprint:
            return self._reader.read_event(data, 10)
        writer = self._writers.get(fingerprint)
        if writer is None:
            raise DecodeError(f"unknown writer schema fingerprint {fingerprint[::-1].hex()}")
        return record_to_event(_read_body(data[10:], writer, self._reader.parsed))


class ConfluentCodec:
    """Confluent wire format against a schema registry (``mock://`` works for tests)."""

    def __init__(self, registry_url: str, reader_schema: Schema, subject: str) -> None:
        from confluent_kafka.schema_registry import Schema as RegistrySchema
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self._client = SchemaRegistryClient.new_client({"url": registry_url})
        self._schema_id = self._client.register_schema(
            subject, RegistrySchema(json.dumps(reader_schema), "AVRO")
        )
        header = CONFLUENT_MAGIC + struct.pack(">I", self._schema_id)
        self._reader = _ReaderSchema(reader_schema, header)
        self._writers: dict[int, Any] = {}

    def encode(self, event: ConversionEvent) -> bytes:
        return self._reader.encode(event)

    def decode(self, data: bytes) -> ConversionEvent:
        if len(data) < 5 or data[:1] != CONFLUENT_MAGIC:
            raise DecodeError("not a Confluent-framed Avro message (no magic byte 0)")
        (schema_id,) = struct.unpack(">I", data[1:5])
        if schema_id == self._schema_id:
            return self._reader.read_event(data, 5)
        writer = self._writers.get(schema_id)
        if writer is None:
            writer = self._fetch_writer(schema_id)
        return record_to_event(_read_body(data[5:], writer, self._reader.parsed))

    def _fetch_writer(self, schema_id: int) -> Any:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            registered = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            raise DecodeError(f"unknown schema id {schema_id} in the registry") from exc
        writer = fastavro.parse_schema(json.loads(registered.schema_str or "null"))
        self._writers[schema_id] = writer
        return writer


def _read_body(body: bytes, writer: Any, reader: Any) -> dict[str, Any]:
    try:
        record = fastavro.schemaless_reader(io.BytesIO(body), writer, reader)
    except Exception as exc:  # fastavro raises many types on garbage; all mean "undecodable"
        raise DecodeError(f"undecodable Avro body: {type(exc).__name__}: {exc}") from exc
    if not isinstance(record, dict):
        raise DecodeError("Avro body is not a record")
    return record


def load_history() -> list[Schema]:
    """Older schema versions kept under ``schemas/avro/history`` so old data stays readable."""
    if not HISTORY_DIR.is_dir():
        return []
    return [load_schema(path) for path in sorted(HISTORY_DIR.glob("*.avsc"))]


def build_codec(schema_registry_url: str | None = None, topic: str = "capi.events") -> EventCodec:
    """The codec a process uses: Confluent framing with a registry, else single-object."""
    schema = load_schema()
    if schema_registry_url:
        return ConfluentCodec(schema_registry_url, schema, subject=f"{topic}-value")
    return SingleObjectCodec(schema, load_history())
