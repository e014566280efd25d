"""The lean ingest reference: the floor of Python doing the webhook's work on uvicorn.

A raw ASGI app (no FastAPI, Starlette or pydantic) that does the minimum a correct Stripe
webhook must: reads the body, checks the ``Stripe-Signature`` header (timestamp within 300 s,
HMAC-SHA256 of ``f"{t}." + body`` compared in constant time), parses the event with orjson,
builds the Avro record of the peer (``bench/peer_ingest.py``) from a prebuilt blank one,
encodes it with fastavro behind the same single-object header, produces it with
confluent-kafka (``acks=all``, idempotent, ``capi serve``'s linger and compression) and
answers 202 once the delivery report is in.
No database, no tenant lookup, the webhook secret in memory: it does less than
``capi serve``; it is a reference for the cost of the work, not an alternative to it.

    PEER_BOOTSTRAP=HOST:PORT PEER_TOPIC=T PEER_SECRET=whsec_... \
        uvicorn --app-dir bench lean_ingest:app --loop uvloop --http httptools
"""

from __future__ import annotations

import asyncio
import hmac
import io
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import fastavro
import orjson
from avro_record import HEADER, NAMESPACE, SCHEMA, SCHEMA_JSON, blank
from confluent_kafka import KafkaException, Producer

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
TOLERANCE = 300  # seconds, as Stripe's libraries and `capi serve`

# The empty lists and maps inside are shared by every record: fastavro only reads them.
_BLANK = blank(SCHEMA_JSON)
_USER, _SOURCE_IDS, _CUSTOM = _BLANK["user"], _BLANK["source_ids"], _BLANK["custom_data"]

_producer = Producer(
    {
        "bootstrap.servers": os.environ.get("PEER_BOOTSTRAP", "127.0.0.1:9092"),
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 1,  # capi serve's settings: each request waits for its ack
        "compression.type": "lz4",
    }
)
_TOPIC = os.environ.get("PEER_TOPIC", "peer.events")
_SECRET = os.environ.get("PEER_SECRET", "").encode()


def _poll() -> None:
    while True:
        _producer.poll(0.1)


threading.Thread(target=_poll, daemon=True).start()


def _purchase(tenant_id: str, event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The event id and the Avro record of a ``payment_intent.succeeded`` event."""
    intent = event["data"]["object"]
    event_id = str(uuid.uuid5(NAMESPACE, f"{tenant_id}:stripe:{intent['id']}"))
    email = intent.get("receipt_email")
    return event_id, {
        **_BLANK,
        "event_id": event_id,
        "tenant_id": tenant_id,
        "source": "stripe",
        "source_event_id": intent["id"],
        "delivery_id": event["id"],
        "event_name": "Purchase",
        "event_time": intent["created"] * 1000,  # timestamp-millis
        "action_source": "website",
        "user": {**_USER, "emails": [email] if email else []},
        "source_ids": {**_SOURCE_IDS, "stripe_customer_id": intent.get("customer")},
        "custom_data": {
            **_CUSTOM,
            "value": Decimal(intent["amount_received"]).scaleb(-2),
            "currency": intent["currency"].upper(),
        },
    }


def _signed(body: bytes, header: bytes | None) -> bool:
    """Whether ``header`` (``t=...,v1=...[,v1=...]``) signs ``body`` within the tolerance."""
    if not header:
        return False
    timestamps: list[bytes] = []
    signatures: list[bytes] = []
    for item in header.split(b","):
        key, _, value = item.strip().partition(b"=")
        if key == b"t":
            timestamps.append(value)
        elif key == b"v1":
            signatures.append(value)
    if len(timestamps) != 1 or not timestamps[0].isdigit() or len(timestamps[0]) > 12:
        return False
    t = int(timestamps[0])
    if abs(time.time() - t) > TOLERANCE:
        return False
    expected = hmac.digest(_SECRET, b"%d." % t + body, "sha256").hex().encode()
    return any(hmac.compare_digest(expected, given) for given in signatures)


async def _answer(send: Send, status: int, payload: dict[str, str]) -> None:
    body = orjson.dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _settle(future: asyncio.Future[None], error: Any) -> None:
    if future.done():  # the client went away
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(KafkaException(error))


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    if path == "/healthz":
        await _answer(send, 200, {"status": "ok"})
        return
    if (
        scope["method"] != "POST"
        or not path.startswith("/webhooks/")
        or not path.endswith("/stripe")
    ):
        await _answer(send, 404, {"error": "not found"})
        return
    try:
        tenant_id = str(uuid.UUID(path[10:-7]))
    except ValueError:
        await _answer(send, 404, {"error": "not found"})
        return
    message = await receive()
    body: bytes = message.get("body", b"")
    if message.get("more_body", False):
        chunks = [body]
        while message.get("more_body", False):
            message = await receive()
            chunks.append(message.get("body", b""))
        body = b"".join(chunks)
    signature = next((v for k, v in scope["headers"] if k == b"stripe-signature"), None)
    if not _signed(body, signature):
        await _answer(send, 400, {"error": "invalid signature"})
        return
    try:
        event = orjson.loads(body)
        if event["type"] != "payment_intent.succeeded":
            await _answer(send, 200, {"status": "ignored"})
            return
        event_id, record = _purchase(tenant_id, event)
        buffer = io.BytesIO()
        buffer.write(HEADER)
        fastavro.schemaless_writer(buffer, SCHEMA, record)
    except (ValueError, KeyError, TypeError, AttributeError):
        await _answer(send, 400, {"error": "malformed event"})
        return
    loop = asyncio.get_running_loop()
    delivered: asyncio.Future[None] = loop.create_future()

    def on_delivery(error: Any, _message: Any) -> None:  # on the poll thread
        loop.call_soon_threadsafe(_settle, delivered, error)

    try:
        _producer.produce(_TOPIC, buffer.getvalue(), event_id.encode(), on_delivery=on_delivery)
        await delivered
    except (BufferError, KafkaException):
        await _answer(send, 503, {"error": "broker unavailable"})
        return
    await _answer(send, 202, {"status": "accepted", "event_id": event_id})
