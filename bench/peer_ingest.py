"""The ingest peer: what a user would build instead of ``capi serve``, under the same load.

FastAPI with a pydantic model of the payment intent; ``stripe.Webhook.construct_event``
verifies the signature (and its timestamp tolerance) and parses the event; fastavro encodes
the same Avro contract (single-object encoding, so the same readers decode it); a
confluent-kafka producer (``acks=all``) sends it and the response waits for the delivery
report before answering 202. The webhook secret is held in memory (``capi serve`` reads it
from its database through a cache): the peer does less.

    PEER_BOOTSTRAP=HOST:PORT PEER_TOPIC=T PEER_SECRET=whsec_... \
        uvicorn --app-dir bench peer_ingest:app --loop uvloop --http httptools
"""

from __future__ import annotations

import asyncio
import io
import os
import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import fastavro
import stripe
from avro_record import HEADER, NAMESPACE, SCHEMA, SCHEMA_JSON, blank
from confluent_kafka import KafkaException, Producer
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel


class PaymentIntent(BaseModel):
    id: str
    amount_received: int
    currency: str
    customer: str | None = None
    receipt_email: str | None = None
    created: int


app = FastAPI()
_producer = Producer(
    {
        "bootstrap.servers": os.environ.get("PEER_BOOTSTRAP", "127.0.0.1:9092"),
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
    }
)
_TOPIC = os.environ.get("PEER_TOPIC", "peer.events")
_SECRET = os.environ.get("PEER_SECRET", "")


def _poll() -> None:
    while True:
        _producer.poll(0.1)


threading.Thread(target=_poll, daemon=True).start()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/webhooks/{tenant_id}/stripe", status_code=202)
async def stripe_webhook(tenant_id: uuid.UUID, request: Request) -> dict[str, str]:
    payload = await request.body()
    try:
        event = stripe.Webhook.construct_event(
            payload, request.headers.get("stripe-signature"), _SECRET
        )
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise HTTPException(400, "invalid webhook") from exc
    if event.type != "payment_intent.succeeded":
        return {"status": "ignored"}
    intent = PaymentIntent.model_validate(event.data.object.to_dict())
    event_id = str(uuid.uuid5(NAMESPACE, f"{tenant_id}:stripe:{intent.id}"))
    record = blank(SCHEMA_JSON)
    record.update(
        schema_version=1,
        event_id=event_id,
        tenant_id=str(tenant_id),
        source="stripe",
        source_event_id=intent.id,
        delivery_id=event.id,
        event_name="Purchase",
        event_time=datetime.fromtimestamp(intent.created, UTC),
        action_source="website",
    )
    record["user"]["emails"] = [intent.receipt_email] if intent.receipt_email else []
    record["source_ids"]["stripe_customer_id"] = intent.customer
    record["custom_data"]["value"] = Decimal(intent.amount_received).scaleb(-2)
    record["custom_data"]["currency"] = intent.currency.upper()
    buffer = io.BytesIO()
    buffer.write(HEADER)
    fastavro.schemaless_writer(buffer, SCHEMA, record)
    loop = asyncio.get_running_loop()
    delivered: asyncio.Future[None] = loop.create_future()

    def on_delivery(error: Any, _message: Any) -> None:
        if error is None:
            loop.call_soon_threadsafe(delivered.set_result, None)
        else:
            loop.call_soon_threadsafe(delivered.set_exception, KafkaException(error))

    _producer.produce(_TOPIC, buffer.getvalue(), event_id.encode(), on_delivery=on_delivery)
    try:
        await delivered
    except KafkaException as exc:
        raise HTTPException(503, "broker unavailable") from exc
    return {"status": "accepted", "event_id": event_id}
