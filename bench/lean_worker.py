"""The lean reference: the worker's core work in as few Python steps as possible, same backlog.

Where the SDK peer (``peer_worker.py``) is what a user would build instead, this is the floor
of plain CPython for the work every event needs: a confluent-kafka consumer; fastavro
decodes each value (the single-object header skipped); each customer field is normalised
and SHA-256-hashed inline, with Meta's rules cut down to what the benchmark's backlog holds
(E.164 and national phones of five countries, names, city, US state names, ZIP, gender,
ISO birth dates); the Meta event dict is built directly and sent with orjson and one pooled
httpx client, 1,000 events per request, the requests of a batch concurrently; then one
``COPY`` of the rows (hash columns and ``user_data``, status ``sent``) into ``lean_events``
and the offsets committed. No contacts, no validation, no retries or dead letters, no
metrics: it does much less than the worker, so its CPU per event is a floor, not a peer.
``bench/worker.py --lean`` checks that its hashes equal the worker's for every event.

    python bench/lean_worker.py --bootstrap HOST:PORT --topic T --group G \
        --database-url postgresql://... --graph-url http://127.0.0.1:PORT --token TOKEN \
        --tenants '{"<tenant id>": ["<pixel id>", "US"], ...}' [--processes N]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
import unicodedata
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker_reference import batches, open_inputs, reference_parser

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TABLE = """
CREATE TABLE IF NOT EXISTS lean_events (
    tenant_id uuid NOT NULL, event_id text NOT NULL, event_name text NOT NULL,
    event_time timestamptz NOT NULL, status text NOT NULL,
    user_email_hash text, user_phone_hash text, user_first_name_hash text,
    user_last_name_hash text, user_gender_hash text, user_date_of_birth_hash text,
    user_city_hash text, user_state_hash text, user_zip_hash text, user_country_hash text,
    user_external_id text, user_data json NOT NULL, updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, event_id))
"""
COPY = (
    "COPY lean_events (tenant_id, event_id, event_name, event_time, status, user_email_hash,"
    " user_phone_hash, user_first_name_hash, user_last_name_hash, user_gender_hash,"
    " user_date_of_birth_hash, user_city_hash, user_state_hash, user_zip_hash,"
    " user_country_hash, user_external_id, user_data, updated_at) FROM STDIN"
)
CALLING_CODES = {"us": "1", "gb": "44", "de": "49", "br": "55", "fr": "33"}
GENDERS = {"f": "f", "female": "f", "m": "m", "male": "m"}
US_ZIP = re.compile(r"\d{5}(?:-?\d{4})?")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _fold(value: str) -> str:
    text = value.strip().lower()
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _phone(value: str, country: str) -> str:
    digits = "".join(c for c in value if c.isdigit())
    if value.lstrip().startswith("+"):
        return digits
    return CALLING_CODES[country] + digits.removeprefix("0")


def _user_data(user: dict[str, Any], country: str, states: dict[str, str]) -> dict[str, Any]:
    """Meta's ``user_data`` for the backlog's fields, hashed, in Meta's key order."""
    data: dict[str, Any] = {}
    if user["emails"]:
        data["em"] = [_sha(_fold(e)) for e in user["emails"]]
    if user["phones"]:
        data["ph"] = [_sha(_phone(p, country)) for p in user["phones"]]
    for key in ("first_name", "last_name"):
        if name := user[key]:
            data["fn" if key == "first_name" else "ln"] = _sha(
                "".join(c for c in _fold(name) if c.isalnum())
            )
    if user["gender"]:
        data["ge"] = _sha(GENDERS[_fold(user["gender"])])
    if user["date_of_birth"]:
        data["db"] = _sha(user["date_of_birth"].replace("-", ""))
    if user["city"]:
        data["ct"] = _sha("".join(c for c in _fold(user["city"]) if c.isalpha()))
    if user["state"]:
        state = "".join(c for c in _fold(user["state"]) if c.isalpha())
        data["st"] = _sha(states.get(state, state) if country == "us" else state)
    if user["zip"]:
        text = "".join(_fold(user["zip"]).split())
        if not (country == "us" and US_ZIP.fullmatch(text)):
            data["zp"] = _sha("".join(c for c in text if c.isalnum()))
        else:
            data["zp"] = _sha(text[:5])
    if user["country"]:
        data["country"] = _sha(country)
    if user["external_ids"]:
        data["external_id"] = [_sha(_fold(e)) for e in user["external_ids"]]
    return data


def _row(record: dict[str, Any], data: dict[str, Any], now: datetime) -> tuple[Any, ...]:
    get = data.get
    first = (get("em") or [None])[0], (get("ph") or [None])[0]
    external = (get("external_id") or [None])[0]
    return (
        record["tenant_id"],
        record["event_id"],
        record["event_name"],
        record["event_time"],
        "sent",
        *first,
        get("fn"),
        get("ln"),
        get("ge"),
        get("db"),
        get("ct"),
        get("st"),
        get("zp"),
        get("country"),
        external,
        data,
    )


def run(args: argparse.Namespace) -> None:
    import fastavro
    import httpx
    import orjson
    from psycopg.types.json import Json

    from meta_capi._geo import _us_states  # the US state table (data, not logic)

    states = _us_states()
    tenants: dict[str, list[str]] = json.loads(args.tenants)  # id -> [pixel, country]
    connection, consumer, schema = open_inputs(args, TABLE)
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=args.threads))
    pool = ThreadPoolExecutor(args.threads)

    def send(pixel: str, events: list[dict[str, Any]]) -> int:
        body = orjson.dumps({"data": events, "access_token": args.token})
        response = client.post(
            f"{args.graph_url}/v26.0/{pixel}/events",
            content=body,
            headers={"content-type": "application/json"},
        )
        response.raise_for_status()
        return int(response.json()["events_received"])

    for messages in batches(args, consumer):
        by_pixel: dict[str, list[dict[str, Any]]] = defaultdict(list)
        rows: list[tuple[Any, ...]] = []
        now = datetime.now(UTC)
        for message in messages:
            value = message.value() or b""
            record: dict[str, Any] = fastavro.schemaless_reader(  # type: ignore[assignment]
                io.BytesIO(value[10:]), schema, schema
            )
            pixel, default_country = tenants[str(record["tenant_id"])]
            user = record["user"]
            country = (user["country"] or default_country).lower()
            data = _user_data(user, country, states)
            for key in ("client_ip_address", "client_user_agent"):
                if record[key]:
                    data[key] = record[key]
            attribution = record["attribution"]
            for key in ("fbc", "fbp"):
                if attribution[key]:
                    data[key] = attribution[key]
            rows.append(_row(record, data, now))
            money = record["custom_data"]
            custom = {"value": float(money["value"])} if money["value"] is not None else {}
            if money["currency"]:
                custom["currency"] = money["currency"]
            event = {
                "event_name": record["event_name"],
                "event_time": int(record["event_time"].timestamp()),
                "event_id": record["event_id"],
                "action_source": record["action_source"],
                "user_data": data,
                "custom_data": custom,
            }
            if record["event_source_url"]:
                event["event_source_url"] = record["event_source_url"]
            by_pixel[pixel].append(event)
        futures = [
            pool.submit(send, pixel, events[start : start + 1000])
            for pixel, events in by_pixel.items()
            for start in range(0, len(events), 1000)
        ]
        sent = sum(future.result() for future in futures)
        if sent != len(rows):
            raise RuntimeError(f"Meta received {sent} of {len(rows)} events")
        with connection.cursor() as cursor, cursor.copy(COPY) as copy:
            for row in rows:
                copy.write_row((*row[:-1], Json(row[-1]), now))
        connection.commit()
        consumer.commit(asynchronous=False)
    consumer.close()
    connection.close()
    pool.shutdown()
    client.close()


if __name__ == "__main__":
    run(reference_parser(__doc__.splitlines()[0], threads=8).parse_args())
