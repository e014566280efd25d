"""Helpers for the webhook integration tests: seeded tenants, signed payloads, the real app.

``AppHarness`` runs the real Starlette app (lifespan included) behind ``httpx.ASGITransport``
on a private event loop, so tests stay synchronous (hypothesis included) while every request
goes through the full ASGI stack, the real broker and the real database.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import EventCodec, build_codec
from capi_stream.event import ConversionEvent
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames
from capi_stream.runtime import Runtime
from capi_stream.settings import CapiSettings
from producers.adapters.signatures import public_key_pem, sign_ghl_ed25519, sign_stripe
from producers.app import AppOptions, build_app
from storage.tenants import upsert_integration, upsert_tenant

GHL_KEY = Ed25519PrivateKey.generate()
STRIPE_SECRET = "whsec_test_0123456789"
CHATBOT_SECRET = "chat-secret-0001"
PERSPECTIVE_SECRET = "persp-secret-0001"
DENEFITS_SECRET = "denefits-secret-0001"
GHL_WORKFLOW_SECRET = "ghl-workflow-0001"

SECRETS: dict[str, dict[str, Any]] = {
    "stripe": {"webhook_secret": STRIPE_SECRET},
    "chatbot": {"secret": CHATBOT_SECRET},
    "perspective": {"secret": PERSPECTIVE_SECRET},
    "denefits": {"secret": DENEFITS_SECRET},
    "ghl": {"public_key_ed25519": public_key_pem(GHL_KEY), "workflow_secret": GHL_WORKFLOW_SECRET},
}
SOURCES = ("chatbot", "ghl", "perspective", "stripe", "denefits")


def seed_tenant(sessions: sessionmaker[Session], default_country: str | None = "US") -> uuid.UUID:
    """A new tenant with a secret for every source."""
    tenant_id = uuid.uuid4()
    with sessions() as session:
        upsert_tenant(session, tenant_id, f"tenant {tenant_id.hex[:6]}", default_country)
        for provider, credentials in SECRETS.items():
            upsert_integration(session, tenant_id, provider, credentials)
        session.commit()
    return tenant_id


def test_runtime(
    kafka_config: KafkaConfig,
    topics: TopicNames,
    engine: Engine,
    sessions: sessionmaker[Session],
    **settings: Any,
) -> Runtime:
    """A Runtime over the test broker, topics and database."""
    return Runtime(
        settings=CapiSettings(topic_main=topics.main, **settings),
        kafka=kafka_config,
        topics=topics,
        engine=engine,
        sessions=sessions,
        codec=build_codec(None, topics.main),
    )


test_runtime.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


# --- signed requests -----------------------------------------------------------------------


def signed_headers(source: str, body: bytes) -> dict[str, str]:
    """The headers a correctly configured sender would send with ``body``."""
    headers = {"content-type": "application/json"}
    if source == "stripe":
        headers["stripe-signature"] = sign_stripe(body, STRIPE_SECRET, int(time.time()))
    elif source == "ghl":
        headers["x-ghl-signature"] = sign_ghl_ed25519(body, GHL_KEY)
    else:
        secret = {"chatbot": CHATBOT_SECRET, "perspective": PERSPECTIVE_SECRET}.get(
            source, DENEFITS_SECRET
        )
        headers["x-capi-secret"] = secret
    return headers


def forged_headers(source: str, body: bytes) -> dict[str, str]:
    """Headers signed with the wrong secret or key."""
    headers = {"content-type": "application/json"}
    if source == "stripe":
        headers["stripe-signature"] = sign_stripe(body, "whsec_wrong", int(time.time()))
    elif source == "ghl":
        headers["x-ghl-signature"] = sign_ghl_ed25519(body, Ed25519PrivateKey.generate())
    else:
        headers["x-capi-secret"] = "not-the-secret"
    return headers


# --- realistic payloads (reference/webhook-sources.md, invented values) ---------------------


def stripe_event(kind: str, obj: Mapping[str, Any], evt_id: str | None = None) -> bytes:
    return dumps(
        {
            "id": evt_id or f"evt_{uuid.uuid4().hex[:16]}",
            "object": "event",
            "type": kind,
            "api_version": "2025-08-27.basil",
            "created": int(time.time()) - 5,
            "livemode": False,
            "data": {"object": dict(obj)},
        }
    )


def stripe_payment(
    pi_id: str,
    *,
    amount: int = 15000,
    currency: str = "usd",
    customer: str | None = "cus_TEST0001",
    email: str | None = "jane@example.com",
    evt_id: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    return stripe_event(
        "payment_intent.succeeded",
        {
            "id": pi_id,
            "object": "payment_intent",
            "status": "succeeded",
            "amount": amount,
            "amount_received": amount,
            "currency": currency,
            "customer": customer,
            "receipt_email": email,
            "metadata": dict(metadata or {}),
            "created": int(time.time()) - 9,
        },
        evt_id,
    )


def chatbot_lead(
    subscriber_id: str,
    *,
    email: str | None = "jane@example.com",
    phone: str | None = "+1 555 0100",
    ad_id: str | None = None,
    fbclid: str | None = None,
    event_type: str = "dm_qualified",
) -> bytes:
    fields: dict[str, Any] = {"AD_ID": ad_id, "fbclid": fbclid}
    return dumps(
        {
            "event_type": event_type,
            "subscriber": {
                "id": subscriber_id,
                "first_name": "Jane",
                "last_name": "Doe",
                "email": email,
                "phone": phone,
                "custom_fields": {k: v for k, v in fields.items() if v is not None},
            },
        }
    )


def ghl_appointment(
    appointment_id: str, contact_id: str = "ghlc_FAKE0001", *, webhook_id: str | None = None
) -> bytes:
    now = datetime.now(UTC)
    return dumps(
        {
            "type": "AppointmentCreate",
            "locationId": "loc_FAKE0001",
            "timestamp": now.isoformat(),
            "webhookId": webhook_id or f"wh_{uuid.uuid4().hex[:12]}",
            "appointment": {
                "id": appointment_id,
                "calendarId": "cal_FAKE0001",
                "contactId": contact_id,
                "title": "Discovery call",
                "appointmentStatus": "confirmed",
                "startTime": "2030-02-03T16:00:00-05:00",
                "dateAdded": now.isoformat(),
            },
        }
    )


def perspective_form(
    contact_id: str,
    *,
    email: str = "jane@example.com",
    fbclid: str | None = None,
    converted_at: datetime | None = None,
) -> bytes:
    converted = (converted_at or datetime.now(UTC)).isoformat()
    values: dict[str, Any] = {
        "email": email,
        "firstName": "Jane",
        "ps_converted_at": converted,
        "utm_source": "facebook",
    }
    if fbclid is not None:
        values["fbclid"] = fbclid
    return dumps(
        {
            "id": contact_id,
            "funnelId": "fn_FAKE0001",
            "funnelName": "LVNG_BOF_Calendly",
            "profile": {"email": {"value": email, "title": "Email"}},
            "values": values,
            "meta": {"convertedAt": converted, "converted": True},
        }
    )


def denefits_contract(
    code: str, *, email: str = "jane@example.com", secret_key: str = DENEFITS_SECRET
) -> bytes:
    return dumps(
        [
            {
                "webhook_type": "contract.created",
                "data": {
                    "contract": {
                        "contract_id": 999001,
                        "contract_code": code,
                        "contract_status": "Active",
                        "customer_email": email,
                        "customer_first_name": "Jane",
                        "customer_last_name": "Doe",
                        "customer_mobile": "5550100000",
                        "financed_amount": 1500,
                        "downpayment_amount": 300,
                        "recurring_amount": 125,
                        "number_of_payments": 12,
                        "remaining_payments": 12,
                        "date_added": datetime.now(UTC).isoformat(),
                    }
                },
                "secret_key": secret_key,
            }
        ]
    )


# --- the app and the topic -----------------------------------------------------------------


class AppHarness:
    """The real app behind ASGITransport, on its own loop; a context manager."""

    def __init__(self, runtime: Runtime, options: AppOptions | None = None) -> None:
        self.app = build_app(runtime, options or AppOptions(publish_timeout_seconds=5.0))
        self._runner = asyncio.Runner()
        self._lifespan = self.app.router.lifespan_context(self.app)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://capi.test"
        )

    def __enter__(self) -> AppHarness:
        self._runner.run(self._lifespan.__aenter__())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._runner.run(self.client.aclose())
        self._runner.run(self._lifespan.__aexit__(None, None, None))
        self._runner.close()

    def post(
        self, tenant_id: uuid.UUID | str, source: str, body: bytes, headers: Mapping[str, str]
    ) -> httpx.Response:
        url = f"/webhooks/{tenant_id}/{source}"
        return self._runner.run(self.client.post(url, content=body, headers=dict(headers)))

    def send(self, tenant_id: uuid.UUID, source: str, body: bytes) -> httpx.Response:
        """POST ``body`` correctly signed."""
        return self.post(tenant_id, source, body, signed_headers(source, body))

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
        return self._runner.run(self.client.get(path, headers=dict(headers or {})))


@dataclass(frozen=True, slots=True)
class Published:
    """One record read back from the topic."""

    key: bytes
    partition: int
    event: ConversionEvent


def read_topic(
    kafka_config: KafkaConfig, topic: str, codec: EventCodec | None = None, timeout: float = 15.0
) -> list[Published]:
    """Every record on ``topic`` (read with assign() from the beginning to the end)."""
    codec = codec or build_codec(None, topic)
    consumer = Consumer(
        kafka_config.consumer_config(
            f"read-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": True}
        )
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = list(metadata.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        found: list[Published] = []
        deadline = time.monotonic() + timeout
        while len(at_end) < len(partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: partitions {at_end} of {partitions} read in time")
            message = consumer.poll(0.2)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition() or 0)
                    continue
                raise AssertionError(f"consume error: {error}")
            partition, value = message.partition() or 0, message.value() or b""
            at_end.discard(partition)
            found.append(Published(message.key() or b"", partition, codec.decode(value)))
        return found
    finally:
        consumer.close()
