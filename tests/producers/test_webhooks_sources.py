"""Each source end to end: real app, real broker, SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.event import build_event_id
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames
from capi_stream.runtime import Runtime
from meta_capi.hashing import hash_email
from storage.models import Contact, WebhookReceipt
from storage.receipts import stored_delivery_id
from tests.support.webhook_fixtures import (
    AppHarness,
    chatbot_lead,
    denefits_contract,
    forged_headers,
    ghl_appointment,
    perspective_form,
    read_topic,
    seed_tenant,
    signed_headers,
    stripe_event,
    stripe_payment,
    test_runtime,
)


@pytest.fixture
def runtime(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    db_engine: Engine,
    session_factory: sessionmaker[Session],
) -> Runtime:
    return test_runtime(kafka_config, topic_names, db_engine, session_factory)


@pytest.fixture
def harness(runtime: Runtime) -> Iterator[AppHarness]:
    with AppHarness(runtime) as app:
        yield app


@pytest.fixture
def tenant(session_factory: sessionmaker[Session]) -> uuid.UUID:
    return seed_tenant(session_factory)


PAYLOADS: dict[str, tuple[Callable[[], bytes], str, str]] = {
    # source -> (body, source_event_id, event_name)
    "chatbot": (lambda: chatbot_lead("1234567890"), "1234567890:qualified", "Lead"),
    "ghl": (lambda: ghl_appointment("appt_FAKE0001"), "appt_FAKE0001", "AddToCart"),
    "perspective": (
        lambda: perspective_form("ps_contact_FAKE0001"),
        "fn_FAKE0001:ps_contact_FAKE0001:converted",
        "InitiateCheckout",
    ),
    "stripe": (lambda: stripe_payment("pi_TEST0001"), "pi_TEST0001", "Purchase"),
    "denefits": (lambda: denefits_contract("TESTCODE0001"), "TESTCODE0001:created", "Purchase"),
}
# The person part of each payload's partition key: the email's hash when there is one.
JANE_KEY = f"em:{hash_email('jane@example.com')}"
PERSON_KEYS = {
    "chatbot": JANE_KEY,
    "ghl": "ghl_contact_id:ghlc_FAKE0001",  # an appointment carries only GHL's contact id
    "perspective": JANE_KEY,
    "stripe": JANE_KEY,
    "denefits": JANE_KEY,
}


@pytest.mark.parametrize("source", sorted(PAYLOADS))
def test_realistic_payload_is_published_keyed_by_person_without_a_database_write(
    source: str,
    harness: AppHarness,
    tenant: uuid.UUID,
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    session_factory: sessionmaker[Session],
) -> None:
    make_body, source_event_id, event_name = PAYLOADS[source]
    response = harness.send(tenant, source, make_body())

    assert response.status_code == 202, response.text
    expected_id = build_event_id(tenant, source, source_event_id)
    assert response.json() == {"status": "accepted", "event_id": expected_id}
    [record] = read_topic(kafka_config, topic_names.main)
    event = record.event
    assert (event.event_id, event.source, event.event_name) == (expected_id, source, event_name)
    assert event.contact_id is None  # the worker links contacts, in its batch
    assert record.key == f"{tenant}:{PERSON_KEYS[source]}".encode()
    with session_factory() as session:
        assert session.scalars(select(Contact)).all() == []
        receipts = session.scalars(select(WebhookReceipt.source)).all()
    assert receipts == (["ghl"] if source == "ghl" else [])  # only GHL's replay guard writes


@pytest.mark.parametrize("source", sorted(PAYLOADS))
def test_forged_signature_is_401_and_nothing_published(
    source: str,
    harness: AppHarness,
    tenant: uuid.UUID,
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
) -> None:
    body = PAYLOADS[source][0]()
    if source == "denefits":
        body = denefits_contract("TESTCODE0001", secret_key="forged")
    response = harness.post(tenant, source, body, forged_headers(source, body))

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_signature"
    assert read_topic(kafka_config, topic_names.main) == []


def test_missing_signature_is_401(harness: AppHarness, tenant: uuid.UUID) -> None:
    body = stripe_payment("pi_TEST0002")
    response = harness.post(tenant, "stripe", body, {"content-type": "application/json"})
    assert response.status_code == 401


@pytest.mark.parametrize("tenant_path", [str(uuid.uuid4()), "not-a-uuid", "acme"])
def test_unknown_tenant_is_404(harness: AppHarness, tenant_path: str) -> None:
    body = stripe_payment("pi_TEST0003")
    response = harness.post(tenant_path, "stripe", body, signed_headers("stripe", body))
    assert response.status_code == 404
    assert response.json() == {"error": {"type": "not_found", "message": "unknown tenant"}}


def test_unknown_source_is_404(harness: AppHarness, tenant: uuid.UUID) -> None:
    response = harness.post(tenant, "paypal", b"{}", {})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


def test_stripe_redelivery_publishes_the_same_event_id(
    harness: AppHarness, tenant: uuid.UUID, kafka_config: KafkaConfig, topic_names: TopicNames
) -> None:
    # Stripe sends several events for one payment, and may redeliver each: one event_id.
    first = harness.send(tenant, "stripe", stripe_payment("pi_SAME", evt_id="evt_1"))
    again = harness.send(tenant, "stripe", stripe_payment("pi_SAME", evt_id="evt_1"))
    charge = harness.send(
        tenant,
        "stripe",
        stripe_event(
            "charge.succeeded",
            {
                "id": "ch_1",
                "object": "charge",
                "paid": True,
                "amount": 15000,
                "amount_captured": 15000,
                "currency": "usd",
                "payment_intent": "pi_SAME",
                "customer": "cus_TEST0001",
                "billing_details": {"email": "jane@example.com"},
            },
            "evt_2",
        ),
    )

    assert [r.status_code for r in (first, again, charge)] == [202, 202, 202]
    ids = {r.json()["event_id"] for r in (first, again, charge)}
    assert ids == {build_event_id(tenant, "stripe", "pi_SAME")}
    published = read_topic(kafka_config, topic_names.main)
    assert {p.event.event_id for p in published} == ids
    assert len({p.key for p in published}) == 1


def test_a_ghl_webhook_id_longer_than_its_column_is_still_deduplicated(
    harness: AppHarness,
    tenant: uuid.UUID,
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    session_factory: sessionmaker[Session],
) -> None:
    webhook_id = "w" * 300
    body = ghl_appointment("appt_LONG", webhook_id=webhook_id)
    first = harness.send(tenant, "ghl", body)
    replay = harness.send(tenant, "ghl", body)

    assert (first.status_code, replay.status_code) == (202, 409)
    assert len(read_topic(kafka_config, topic_names.main)) == 1
    with session_factory() as session:
        receipts = session.scalars(select(WebhookReceipt.delivery_id)).all()
    assert receipts == [stored_delivery_id(webhook_id)]
    assert receipts[0].startswith("sha256:")


@pytest.mark.parametrize("webhook_id", ["wh_\ud800", "wh_\x00"], ids=["surrogate", "nul"])
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "forged"])
def test_a_ghl_webhook_id_no_column_can_hold_is_a_4xx(
    harness: AppHarness,
    tenant: uuid.UUID,
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    webhook_id: str,
    signed: bool,
) -> None:
    # A lone surrogate (JSON's "\ud800" escape) has no UTF-8 form; PostgreSQL refuses NUL.
    body = ghl_appointment("appt_ODD", webhook_id=webhook_id)
    forged = {"content-type": "application/json", "x-ghl-signature": "AAAA"}
    headers = signed_headers("ghl", body) if signed else forged
    answers = [harness.post(tenant, "ghl", body, headers).status_code for _ in range(2)]

    assert answers == ([400, 400] if signed else [401, 401])
    assert read_topic(kafka_config, topic_names.main, timeout=1) == []


def test_ghl_duplicate_webhook_id_is_409_after_first_publish(
    harness: AppHarness,
    tenant: uuid.UUID,
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    session_factory: sessionmaker[Session],
) -> None:
    body = ghl_appointment("appt_DUP", webhook_id="wh_DUP0001")
    first = harness.send(tenant, "ghl", body)
    replay = harness.send(tenant, "ghl", body)

    assert first.status_code == 202
    assert replay.status_code == 409
    assert replay.json()["error"]["type"] == "duplicate_delivery"
    assert len(read_topic(kafka_config, topic_names.main)) == 1
    with session_factory() as session:
        receipts = session.scalars(select(WebhookReceipt.delivery_id)).all()
    assert receipts == ["wh_DUP0001"]


@pytest.mark.parametrize(
    ("source", "body"),
    [
        ("stripe", stripe_event("customer.created", {"id": "cus_1", "object": "customer"})),
        ("chatbot", chatbot_lead("42", event_type="link_sent")),
    ],
)
def test_ignored_event_types_are_200_and_not_published(
    source: str,
    body: bytes,
    harness: AppHarness,
    tenant: uuid.UUID,
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
) -> None:
    response = harness.send(tenant, source, body)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert response.json()["reason"]
    assert read_topic(kafka_config, topic_names.main) == []
