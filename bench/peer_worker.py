"""The worker peer: what a user would build instead of ``capi worker``, run on the same backlog.

A plain confluent-kafka consumer; fastavro decodes each value (the single-object header
skipped); Meta's official ``facebook_business`` SDK builds each event (``UserData``,
``CustomData``, ``Event``: its own normalisation and SHA-256 hashing) and sends batches of up
to 1,000 events per pixel from 16 threads; ``INSERT ... ON CONFLICT`` (psycopg executemany) of
one row per event (ids, name, time, money; no hashes) into a ``peer_events`` table of the
same database; offsets are committed
once the batch is sent and stored. No contacts, no country defaults for phones, no retries or
dead letters: the peer does less than the worker.

The SDK is pointed at the Graph API emulator by the session's ``GRAPH`` URL, the documented
class attribute of ``FacebookSession`` (``FacebookAdsApi.init`` builds the session).

    python bench/peer_worker.py --bootstrap HOST:PORT --topic T --group G \
        --database-url postgresql://... --graph-url http://127.0.0.1:PORT --token TOKEN \
        --tenants '{"<tenant id>": ["<pixel id>", "US"], ...}' [--processes N]
"""

from __future__ import annotations

import argparse
import io
import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from worker_reference import batches, open_inputs, reference_parser

TABLE = """
CREATE TABLE IF NOT EXISTS peer_events (
    tenant_id uuid NOT NULL, event_id text NOT NULL, pixel_id text NOT NULL,
    event_name text NOT NULL, event_time timestamptz NOT NULL, value numeric,
    currency text, status text NOT NULL, payload jsonb NOT NULL,
    updated_at timestamptz NOT NULL, PRIMARY KEY (tenant_id, event_id))
"""
UPSERT = """
INSERT INTO peer_events (tenant_id, event_id, pixel_id, event_name, event_time, value,
    currency, status, payload, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (tenant_id, event_id) DO UPDATE SET status = EXCLUDED.status,
    payload = EXCLUDED.payload, updated_at = EXCLUDED.updated_at
"""


def _sdk_event(record: dict[str, Any]) -> Any:
    from facebook_business.adobjects.serverside.action_source import ActionSource
    from facebook_business.adobjects.serverside.custom_data import CustomData
    from facebook_business.adobjects.serverside.event import Event
    from facebook_business.adobjects.serverside.gender import Gender
    from facebook_business.adobjects.serverside.user_data import UserData

    user, attribution, money = record["user"], record["attribution"], record["custom_data"]
    gender = user["gender"]
    birth = user["date_of_birth"]
    user_data = UserData(
        emails=user["emails"] or None,
        phones=user["phones"] or None,
        first_name=user["first_name"],
        last_name=user["last_name"],
        city=user["city"],
        state=user["state"],
        zip_code=user["zip"],
        country_code=user["country"],
        external_ids=user["external_ids"] or None,
        genders=[Gender.FEMALE if gender[0] in "fF" else Gender.MALE] if gender else None,
        dates_of_birth=[birth.replace("-", "")] if birth else None,
        client_ip_address=record["client_ip_address"],
        client_user_agent=record["client_user_agent"],
        fbc=attribution["fbc"],
        fbp=attribution["fbp"],
    )
    custom = CustomData(
        value=float(money["value"]) if money["value"] is not None else None,
        currency=money["currency"].lower() if money["currency"] else None,
        order_id=money["order_id"],
        content_ids=money["content_ids"] or None,
        num_items=money["num_items"],
    )
    return Event(
        event_name=record["event_name"],
        event_time=int(record["event_time"].timestamp()),
        event_id=record["event_id"],
        event_source_url=record["event_source_url"],
        action_source=ActionSource(record["action_source"]),
        user_data=user_data,
        custom_data=custom,
    )


def _send(pixel_id: str, events: list[Any]) -> int:
    from facebook_business.adobjects.serverside.event_request import EventRequest

    sent = 0
    for start in range(0, len(events), 1000):  # Meta's limit per request
        response = EventRequest(pixel_id=pixel_id, events=events[start : start + 1000]).execute()
        sent += int(response.events_received or 0)
    return sent


def run(args: argparse.Namespace) -> None:
    import fastavro
    from facebook_business.api import FacebookAdsApi
    from facebook_business.session import FacebookSession

    FacebookSession.GRAPH = args.graph_url  # the emulator instead of graph.facebook.com
    FacebookAdsApi.init(access_token=args.token, crash_log=False, timeout=30)
    tenants: dict[str, list[str]] = json.loads(args.tenants)  # id -> [pixel, country]
    pixels = {tenant: pixel for tenant, (pixel, _country) in tenants.items()}
    connection, consumer, schema = open_inputs(args, TABLE)
    pool = ThreadPoolExecutor(args.threads)
    for messages in batches(args, consumer):
        by_pixel: dict[str, list[Any]] = defaultdict(list)
        rows = []
        now = datetime.now(UTC)
        for message in messages:
            record = fastavro.schemaless_reader(io.BytesIO(message.value()[10:]), schema, schema)
            pixel = pixels[str(record["tenant_id"])]
            event = _sdk_event(record)
            by_pixel[pixel].append(event)
            money = record["custom_data"]
            rows.append(
                (
                    record["tenant_id"],
                    record["event_id"],
                    pixel,
                    record["event_name"],
                    record["event_time"],
                    money["value"],
                    money["currency"],
                    "sent",
                    json.dumps(money, default=str),
                    now,
                )
            )
        futures = [pool.submit(_send, pixel, events) for pixel, events in by_pixel.items()]
        for future in futures:
            future.result()
        with connection.cursor() as cursor:
            cursor.executemany(UPSERT, rows)
        connection.commit()
        consumer.commit(asynchronous=False)
    consumer.close()
    connection.close()
    pool.shutdown()


if __name__ == "__main__":
    run(reference_parser(__doc__.splitlines()[0], threads=16).parse_args())
