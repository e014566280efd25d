"""The Avro contract as the references use it: schema, single-object header, blank record.

Shared by ``peer_ingest.py`` and ``lean_ingest.py`` (uvicorn loads both with ``--app-dir
bench``), so both encode exactly the bytes ``capi serve`` does for the same event, and by
the worker references' ``worker_reference.py``, which decode with its schema.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_JSON = json.loads((ROOT / "schemas" / "avro" / "conversion_event.avsc").read_text())
SCHEMA = fastavro.parse_schema(SCHEMA_JSON)
NAMESPACE = uuid.UUID("6f1c1d4e-5b0a-4c2e-9a53-0c8e4a1f7d21")  # the project's event ids
HEADER = (
    b"\xc3\x01" + bytes.fromhex(fingerprint(to_parsing_canonical_form(SCHEMA), "CRC-64-AVRO"))[::-1]
)


def blank(schema: dict[str, Any]) -> dict[str, Any]:
    """A record of the schema with every field at its empty value."""
    record: dict[str, Any] = {}
    for field in schema["fields"]:
        kind = field["type"]
        if isinstance(kind, dict) and kind.get("type") == "record":
            record[field["name"]] = blank(kind)
        elif isinstance(kind, dict) and kind.get("type") == "array":
            record[field["name"]] = []
        elif isinstance(kind, dict) and kind.get("type") == "map":
            record[field["name"]] = {}
        else:
            record[field["name"]] = field.get("default")
    return record
