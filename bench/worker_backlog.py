"""Data and references of the worker benchmark (``bench/worker.py``).

* Templates: a few realistic raw events per tenant (emails, phones, names, addresses in the
  clear, so the worker's normalising and hashing cost is real), Avro-encoded once each; every
  event of the backlog is a template with a 10-digit counter patched into its ids and email.
* People: ``templated`` reuses each template's phone and names (the hash cache always hits);
  ``new`` patches a new phone (E.164 from Stripe and GoHighLevel, national from the chatbot)
  and new first and last names into every event as well: a cold hash cache, as real traffic.
* References: the naive design (one INSERT and one single-event POST per event)
  and a bulk insert of the same rows into PostgreSQL alone.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

MARKER = b"QQQQQQQQQQ"  # 10 chars, replaced by the event's counter
PHONE_MARKER = "PPPPPPP"  # 7 digits of the counter (new people only)
NAME_MARKER = "NNNNNN"  # 6 letters of the counter (new people only)
TOKEN = "EAAB-bench-token"  # emulator-only
COUNTRIES = ("US", "GB", "DE", "BR", "FR")
PHONES = {  # national format of the tenant's country: parsed with its default country
    "US": "(650) 253-0000",
    "GB": "020 7946 0958",
    "DE": "030 90182736",
    "BR": "(11) 91234-5678",
    "FR": "01 42 68 53 00",
}
# New people: E.164 (what Stripe and GoHighLevel send) and national (typed into a chatbot).
NEW_PHONES = {
    "US": ("+1650" + PHONE_MARKER, "650 " + PHONE_MARKER),
    "GB": ("+44207" + PHONE_MARKER, "0207 " + PHONE_MARKER),
    "DE": ("+4930" + PHONE_MARKER, "030 " + PHONE_MARKER),
    "BR": ("+551191" + PHONE_MARKER, "(11) 91" + PHONE_MARKER),
    "FR": ("+3314" + PHONE_MARKER, "014 " + PHONE_MARKER),
}


@dataclass(frozen=True, slots=True)
class BenchTenant:
    tenant_id: uuid.UUID
    pixel_id: str
    country: str


def build_tenants(count: int) -> list[BenchTenant]:
    return [
        BenchTenant(uuid.uuid4(), str(1_000_000_000_000 + i), COUNTRIES[i % len(COUNTRIES)])
        for i in range(count)
    ]


def seed_tenants(sessions: Any, tenants: Sequence[BenchTenant]) -> None:
    from storage.tenants import META_PROVIDER, upsert_integration, upsert_tenant

    with sessions.begin() as session:
        for t in tenants:
            upsert_tenant(session, t.tenant_id, f"bench {t.pixel_id}", t.country)
            upsert_integration(
                session,
                t.tenant_id,
                META_PROVIDER,
                {"pixel_id": t.pixel_id, "capi_access_token": TOKEN},
            )


def _new_person(fields: dict[str, Any], tenant: BenchTenant, kind: int) -> dict[str, Any]:
    user = dict(fields["user"])
    e164, national = NEW_PHONES[tenant.country]
    if user.get("phones"):
        user["phones"] = [national if kind == 2 else e164]
    user["first_name"] = user["first_name"].split("-")[0] + NAME_MARKER.lower()
    user["last_name"] = NAME_MARKER.capitalize() + user["last_name"].split(" ")[0]
    return {**fields, "user": user}


def _template_fields(tenant: BenchTenant, kind: int, event_time: datetime) -> dict[str, Any]:
    m = MARKER.decode()
    base: dict[str, Any] = {
        "event_id": f"evt-{kind}-{m}",
        "tenant_id": tenant.tenant_id,
        "source_event_id": f"src_{kind}_{m}",
        "event_time": event_time,
        "client_ip_address": "203.0.113.7",
        "client_user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Safari/605.1.15",
    }
    phone = PHONES[tenant.country]
    if kind == 0:  # a Stripe purchase on the website, full customer information
        return {
            **base,
            "source": "stripe",
            "event_name": "Purchase",
            "action_source": "website",
            "event_source_url": "https://shop.example.com/checkout/complete",
            "user": {
                "emails": [f" Jane.Doe+{m}@Example.COM "],
                "phones": [phone],
                "first_name": "Jane",
                "last_name": "Doe-Smith",
                "city": "Menlo Park",
                "state": "California",
                "zip": "94025-1234",
                "country": tenant.country,
                "external_ids": [f"cus_{m}"],
            },
            "attribution": {
                "fbc": "fb.1.1712000000000.IwAR2xYzAbCdEf",
                "fbp": "fb.1.1596403881668.1116446470",
            },
            "custom_data": {
                "value": Decimal("149.90"),
                "currency": "USD",
                "order_id": f"ord-{m}",
                "content_ids": ["sku-1", "sku-2"],
                "num_items": 2,
            },
        }
    if kind == 1:  # a GoHighLevel lead, system generated
        return {
            **base,
            "source": "ghl",
            "event_name": "Lead",
            "action_source": "system_generated",
            "user": {
                "emails": [f"josé.garcía.{m}@correo.example.com"],
                "phones": [phone],
                "first_name": "José",
                "last_name": "García Núñez",
                "city": "São Paulo",
                "country": tenant.country,
            },
        }
    if kind == 2:  # a chatbot registration with birthday and gender
        return {
            **base,
            "source": "chatbot",
            "event_name": "CompleteRegistration",
            "action_source": "chat",
            "user": {
                "emails": [f"MARIE.{m}@EXAMPLE.FR"],
                "phones": [phone],
                "first_name": "Marie-Claire",
                "last_name": "O'Brien",
                "gender": "Female",
                "date_of_birth": "1990-04-23",
                "zip": "75001",
                "country": tenant.country,
                "external_ids": [f"sub-{m}"],
            },
        }
    # a Denefits contract: money in another currency, few match keys
    return {
        **base,
        "source": "denefits",
        "event_name": "Purchase",
        "action_source": "other",
        "user": {
            "emails": [f"buyer{m}@mail.example.org"],
            "first_name": "Ana",
            "last_name": "Souza",
            "country": tenant.country,
        },
        "custom_data": {
            "value": Decimal("1200.00"),
            "currency": "EUR",
            "order_id": f"contract-{m}",
        },
    }


def _letters(counter: int) -> bytes:
    out = bytearray()
    for _ in range(len(NAME_MARKER)):
        counter, digit = divmod(counter, 26)
        out.append(97 + digit)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Template:
    tenant: BenchTenant
    value: bytes
    key: bytes
    new_people: bool = False

    def render(self, counter: int) -> tuple[bytes, bytes]:
        digits = b"%010d" % counter
        value = self.value.replace(MARKER, digits)
        if self.new_people:  # same lengths: the Avro body stays valid
            letters = _letters(counter)
            value = (
                value.replace(PHONE_MARKER.encode(), b"%07d" % (counter % 10**7))
                .replace(NAME_MARKER.lower().encode(), letters)
                .replace(NAME_MARKER.capitalize().encode(), letters.capitalize())
            )
        return value, self.key.replace(MARKER, digits)


def build_templates(
    codec: Any, tenants: Sequence[BenchTenant], kinds: int = 4, *, new_people: bool = False
) -> list[Template]:
    """One Avro value per (tenant, kind), encoded once; event_time 10 minutes ago."""
    from capi_stream.event import ConversionEvent

    event_time = datetime.now(UTC) - timedelta(minutes=10)
    templates = []
    for tenant in tenants:
        for kind in range(kinds):
            fields = _template_fields(tenant, kind, event_time)
            if new_people:
                fields = _new_person(fields, tenant, kind)
            event = ConversionEvent.model_validate(fields)
            value = codec.encode(event)
            assert value.count(MARKER) >= 3, "marker lost in encoding"
            templates.append(Template(tenant, value, event.event_id.encode(), new_people))
    return templates


def iter_backlog(templates: Sequence[Template], start: int, count: int) -> Iterator[bytes]:
    for counter in range(start, start + count):
        yield templates[counter % len(templates)].render(counter)[0]


def produce_backlog(
    config: dict[str, Any], topic: str, templates: Sequence[Template], count: int
) -> float:
    """Produce ``count`` events (acks=all); returns the seconds it took."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            **config,
            "batch.size": 1_000_000,
            "linger.ms": 20,
            "queue.buffering.max.messages": 500_000,
        }
    )
    errors: list[Any] = []

    def on_delivery(error: Any, _message: Any) -> None:
        if error is not None:
            errors.append(error)

    started = time.perf_counter()
    for counter in range(count):
        value, key = templates[counter % len(templates)].render(counter)
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        if counter % 10_000 == 0:
            producer.poll(0)
    remaining = producer.flush(120)
    if remaining or errors:
        raise RuntimeError(f"backlog not produced: {remaining} pending, errors {errors[:3]}")
    return time.perf_counter() - started


# --- references ---------------------------------------------------------------------------


def prepare_rows(codec: Any, values: Sequence[bytes], countries: dict[uuid.UUID, str]) -> Any:
    """Decode and prepare events as the worker does: ``[(event, Prepared)]``."""
    from consumers.pipeline.prepare import prepare_event

    now = datetime.now(UTC)
    out = []
    for value in values:
        event = codec.decode(value)
        out.append(
            (event, prepare_event(event, None, default_country=countries[event.tenant_id], now=now))
        )
    return out


def run_naive(
    engine: Any,
    codec: Any,
    values: Sequence[bytes],
    tenants: Sequence[BenchTenant],
    graph_url: str,
) -> dict[str, Any]:
    """Per event: decode, hash, one INSERT (own transaction), one POST of that single event."""
    import httpx
    from sqlalchemy import insert

    from consumers.pipeline.prepare import prepare_event
    from storage.models import MetaCapiEvent

    by_id = {t.tenant_id: t for t in tenants}
    client = httpx.Client(timeout=1.5, headers={"Content-Type": "application/json"})
    table = MetaCapiEvent.__table__
    failures = 0
    started = time.perf_counter()
    for value in values:
        event = codec.decode(value)
        tenant = by_id[event.tenant_id]
        now = datetime.now(UTC)
        prepared = prepare_event(event, None, default_country=tenant.country, now=now)
        with engine.begin() as connection:
            connection.execute(
                insert(table).values(
                    id=uuid.uuid4(), created_at=now, updated_at=now, **prepared.row
                )
            )
        assert prepared.server_event is not None
        body = {"data": [prepared.server_event.to_payload()], "access_token": TOKEN}
        response = client.post(
            f"{graph_url}/v26.0/{tenant.pixel_id}/events",
            content=json.dumps(body, separators=(",", ":")),
        )
        failures += response.status_code != 200
    seconds = time.perf_counter() - started
    client.close()
    return {
        "events": len(values),
        "seconds": seconds,
        "events_per_s": len(values) / seconds,
        "failed_posts": failures,
    }


def bulk_rows(base_rows: Sequence[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """``count`` rows cycled from ``base_rows`` with unique event ids and row ids."""
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        row = dict(base_rows[i % len(base_rows)])
        row.update(id=uuid.uuid4(), event_id=f"bulk-{i:010d}", created_at=now, updated_at=now)
        rows.append(row)
    return rows


def run_bulk_insert(engine: Any, rows: Sequence[dict[str, Any]], batch: int) -> dict[str, Any]:
    """SQLAlchemy Core ``insert()`` executemany of ``batch`` rows, one transaction per batch.

    SQLAlchemy 2 sends it as multi-row ``INSERT ... VALUES`` pages of 1,000 rows; the same
    rows as one ``insert().values(list)`` are several times slower (the statement with
    ~33,000 parameters is compiled afresh for every batch).
    """
    from sqlalchemy import insert

    from storage.models import MetaCapiEvent

    statement = insert(MetaCapiEvent.__table__)
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        with engine.begin() as connection:
            connection.execute(statement, list(rows[start : start + batch]))
    seconds = time.perf_counter() - started
    return {
        "rows": len(rows),
        "batch": batch,
        "seconds": seconds,
        "rows_per_s": len(rows) / seconds,
    }


def run_bulk_copy(engine: Any, rows: Sequence[dict[str, Any]], batch: int) -> dict[str, Any]:
    """psycopg ``COPY ... FROM STDIN``, one transaction per batch."""
    from psycopg.types.json import Json

    columns = list(rows[0])
    json_columns = {"user_data", "custom_data", "meta_response"}
    statement = f"COPY meta_capi_events ({', '.join(columns)}) FROM STDIN"
    raw = engine.raw_connection()
    started = time.perf_counter()
    try:
        connection = raw.driver_connection
        for start in range(0, len(rows), batch):
            with connection.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows[start : start + batch]:
                    copy.write_row([Json(row[c]) if c in json_columns else row[c] for c in columns])
            connection.commit()
    finally:
        raw.close()
    seconds = time.perf_counter() - started
    return {
        "rows": len(rows),
        "batch": batch,
        "seconds": seconds,
        "rows_per_s": len(rows) / seconds,
    }
