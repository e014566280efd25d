"""Codec micro-benchmark: microseconds per call, fastavro vs the compiled codec, same process.

    .venv/bin/python bench/codec.py [--rounds 30] [--calls 1000]

Two events: a typical purchase (a few contact and click fields) and one with every field set.
Each figure is the best round of ``--calls`` calls in process CPU time, rounds interleaved
across the candidates, so a busy machine shifts all of them alike. Nothing is written; the
output is a table.
"""

from __future__ import annotations

import argparse
import io
import time
import timeit
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import fastavro

from capi_stream.avro.codec import (
    SingleObjectCodec,
    event_to_record,
    load_schema,
    record_to_event,
)
from capi_stream.avro.compiled import compile_reader, compile_writer
from capi_stream.event import ConversionEvent, UserIdentity

TENANT = uuid.UUID("11111111-2222-3333-4444-555555555555")


def _typical() -> ConversionEvent:
    return ConversionEvent.create(
        tenant_id=TENANT,
        source="stripe",
        source_event_id="pi_1",
        event_name="Purchase",
        event_time=datetime(2026, 11, 28, 10, 30, 15, tzinfo=UTC),
        action_source="website",
        event_source_url="https://shop.example.com/thanks",
        client_user_agent="Mozilla/5.0",
        user={"emails": ["jane@example.com"], "phones": ["+1 555 0100"], "first_name": "Jane"},
        attribution={"fbclid": "IwAR2F4-dbP0l7", "fbp": "fb.1.1554763741205.1234567890"},
        custom_data={"value": Decimal("1234.567"), "currency": "USD", "order_id": "pi_1"},
    )


def _full() -> ConversionEvent:
    text = "Zoë Müller-Łukasz"
    user: dict[str, Any] = dict.fromkeys(UserIdentity.model_fields, text)
    user |= {
        "emails": ["a@example.com", "b@example.com"],
        "phones": ["+15550100"],
        "external_ids": ["x-1"],
    }
    return ConversionEvent.create(
        tenant_id=TENANT,
        source="ghl",
        source_event_id="appt-1",
        event_name="Lead",
        contact_id=uuid.uuid4(),
        delivery_id="d-1",
        event_time=datetime.now(UTC),
        action_source="chat",
        event_source_url="https://example.com/" + "p" * 600,
        client_user_agent="Mozilla/5.0 (X11; Linux x86_64)",
        client_ip_address="203.0.113.9",
        messaging_channel="whatsapp",
        user=user,
        source_ids={"ghl_contact_id": "c-1", "mc_subscriber_id": "42"},
        attribution={"fbc": "fb.1.1.abc", "click_time": datetime.now(UTC), "utm_source": "fb"},
        custom_data={
            "value": Decimal("99999.9999"),
            "currency": "EUR",
            "num_items": 3,
            "content_ids": ["sku-1", "sku-2"],
            "extra": {"plan": "gold", "seats": "5"},
        },
    )


def _candidates(event: ConversionEvent) -> dict[str, Callable[[], Any]]:
    schema = load_schema()
    parsed = fastavro.parse_schema(schema)
    codec = SingleObjectCodec(schema)
    data = codec.encode(event)
    body = data[10:]
    write, read = compile_writer(schema), compile_reader(schema)
    fastavro_record = fastavro.schemaless_reader(io.BytesIO(body), parsed, parsed)
    compiled_record = read(data, 10)

    def fastavro_encode() -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, parsed, event_to_record(event))
        return buffer.getvalue()

    def fastavro_decode() -> ConversionEvent:
        record = fastavro.schemaless_reader(io.BytesIO(body), parsed, parsed)
        return ConversionEvent.model_validate(record)

    return {
        "encode  fastavro (model_dump + schemaless_writer)": fastavro_encode,
        "encode  compiled (codec.encode)": lambda: codec.encode(event),
        "          of which compiled writer": lambda: write(event),
        "decode  fastavro (schemaless_reader + validate)": fastavro_decode,
        "decode  compiled (codec.decode)": lambda: codec.decode(data),
        "          of which compiled reader": lambda: read(data, 10),
        "validate  model_validate (extra forbid)": lambda: ConversionEvent.model_validate(
            fastavro_record
        ),
        "validate  now (record_to_event, extra='ignore')": lambda: record_to_event(compiled_record),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    for label, event in (("typical", _typical()), ("every field set", _full())):
        candidates = _candidates(event)
        best = dict.fromkeys(candidates, float("inf"))
        for _ in range(args.rounds):
            for name, call in candidates.items():
                timer = timeit.Timer(call, timer=time.process_time)  # CPU time: others share it
                seconds = timer.timeit(number=args.calls) / args.calls
                best[name] = min(best[name], seconds)
        size = len(SingleObjectCodec(load_schema()).encode(event))
        print(f"{label} event ({size} bytes): us per call, best of {args.rounds} rounds")
        for name, seconds in best.items():
            print(f"  {name:50s} {seconds * 1e6:7.1f}")


if __name__ == "__main__":
    main()
