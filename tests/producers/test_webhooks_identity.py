"""Money and identity end to end: webhook app -> broker -> worker -> Meta (the emulator).

The webhook app no longer touches ``contacts``: the worker links and records them in its
batch. So identity is proven where the user sees it: what Meta receives, plus the row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames
from meta_capi.hashing import hash_field
from storage.models import Contact
from storage.tenants import META_PROVIDER, upsert_integration
from tests.support.emulator_fixture import Emulator
from tests.support.webhook_fixtures import (
    AppHarness,
    chatbot_lead,
    perspective_form,
    read_topic,
    seed_tenant,
    stripe_payment,
    test_runtime,
)
from tests.support.worker_fixtures import (
    TOKEN,
    RunningWorker,
    make_worker_config,
    running_worker,
    sha256,
    wait_for,
)

PIXEL = "4242424242"
Payload = dict[str, object]


@pytest.fixture
def harness(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    db_engine: Engine,
    session_factory: sessionmaker[Session],
) -> Iterator[AppHarness]:
    with AppHarness(test_runtime(kafka_config, topic_names, db_engine, session_factory)) as app:
        yield app


@pytest.fixture
def tenant(session_factory: sessionmaker[Session]) -> uuid.UUID:
    """Webhook secrets for every source, and a Meta integration aimed at the emulator."""
    tenant_id = seed_tenant(session_factory)
    with session_factory.begin() as session:
        credentials = {"pixel_id": PIXEL, "capi_access_token": TOKEN}
        upsert_integration(session, tenant_id, META_PROVIDER, credentials)
    return tenant_id


@pytest.fixture
def worker(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> Iterator[RunningWorker]:
    config = make_worker_config(group_id, emulator.base_url)
    with running_worker(kafka_config, topic_names, session_factory, config) as running:
        yield running


def at_meta(emulator: Emulator, *event_ids: str) -> dict[str, Payload]:
    """The payloads Meta received, by event_id, once all of ``event_ids`` arrived."""

    def received() -> dict[str, Payload]:
        found = {str(e.payload["event_id"]): e.payload for e in emulator.state.events(PIXEL)}
        return found if set(event_ids) <= set(found) else {}

    return wait_for(received, timeout=60, what=f"{len(event_ids)} events at Meta")


def user_data(payload: Payload) -> dict[str, object]:
    user = payload["user_data"]
    assert isinstance(user, dict)
    return user


def only_contact(sessions: sessionmaker[Session], tenant: uuid.UUID) -> Contact:
    with sessions() as session:
        [contact] = session.scalars(select(Contact).where(Contact.tenant_id == tenant)).all()
        return contact


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.mark.parametrize(
    ("currency", "minor", "major"),
    [
        ("jpy", 15000, Decimal("15000")),
        ("kwd", 15250, Decimal("15.250")),
        ("eur", 999, Decimal("9.99")),
    ],
)
def test_money_is_converted_by_the_currency_exponent(
    currency: str,
    minor: int,
    major: Decimal,
    harness: AppHarness,
    tenant: uuid.UUID,
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
) -> None:
    body = stripe_payment(f"pi_{currency}", amount=minor, currency=currency)
    assert harness.send(tenant, "stripe", body).status_code == 202
    [record] = read_topic(kafka_config, topic_names.main)
    assert record.event.custom_data.currency == currency.upper()
    assert record.event.custom_data.value == major


def test_a_purchase_carries_the_click_and_the_person_of_an_earlier_lead(
    harness: AppHarness,
    tenant: uuid.UUID,
    worker: RunningWorker,
    emulator: Emulator,
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    session_factory: sessionmaker[Session],
) -> None:
    # Back to back: one email, one partition key, so the worker merges them in this order.
    lead = harness.send(tenant, "chatbot", chatbot_lead("555", fbclid="IwAR_LEAD_CLICK"))
    paid = harness.send(tenant, "stripe", stripe_payment("pi_555", customer="cus_555"))
    assert [r.status_code for r in (lead, paid)] == [202, 202]
    lead_id, paid_id = lead.json()["event_id"], paid.json()["event_id"]

    received = at_meta(emulator, lead_id, paid_id)
    by_id = {p.event.event_id: p.event for p in read_topic(kafka_config, topic_names.main)}
    first_seen = millis(by_id[lead_id].event_time)  # the Lead's time, not the Purchase's
    assert by_id[paid_id].event_time != by_id[lead_id].event_time
    assert by_id[paid_id].attribution.fbclid is None and by_id[paid_id].attribution.fbc is None
    expected_fbc = f"fb.1.{first_seen}.IwAR_LEAD_CLICK"
    assert user_data(received[paid_id])["fbc"] == expected_fbc
    assert user_data(received[lead_id])["fbc"] == expected_fbc

    contact = only_contact(session_factory, tenant)
    assert user_data(received[lead_id])["external_id"] == [sha256(str(contact.id))]
    assert user_data(received[paid_id])["external_id"] == [sha256(str(contact.id))]
    assert (contact.mc_subscriber_id, contact.stripe_customer_id) == ("555", "cus_555")
    assert contact.fbc == expected_fbc


def test_a_later_webhook_with_nulls_erases_nothing(
    harness: AppHarness,
    tenant: uuid.UUID,
    worker: RunningWorker,
    emulator: Emulator,
    session_factory: sessionmaker[Session],
) -> None:
    lead = harness.send(
        tenant, "chatbot", chatbot_lead("777", fbclid="IwAR_FIRST", ad_id="120200000000000001")
    )
    assert lead.status_code == 202
    lead_id = lead.json()["event_id"]
    lead_fbc = user_data(at_meta(emulator, lead_id)[lead_id])["fbc"]
    # Later, a payment that names the subscriber but has no email, phone or click id at all.
    bare = stripe_payment(
        "pi_777", customer="cus_777", email=None, metadata={"mc_id": "777", "ad_id": "999"}
    )
    paid = harness.send(tenant, "stripe", bare)
    assert paid.status_code == 202
    paid_id = paid.json()["event_id"]

    received = at_meta(emulator, lead_id, paid_id)
    contact = only_contact(session_factory, tenant)
    assert contact.email_hash == hash_field("em", "jane@example.com")
    assert contact.phone_hash == hash_field("ph", "+1 555 0100")
    assert (contact.fbclid, contact.fbc) == ("IwAR_FIRST", lead_fbc)
    assert contact.ad_id == "120200000000000001"  # first touch
    assert (contact.mc_subscriber_id, contact.stripe_customer_id) == ("777", "cus_777")
    purchase = user_data(received[paid_id])
    assert purchase["fbc"] == lead_fbc  # the stored click still reaches Meta
    assert purchase["external_id"] == user_data(received[lead_id])["external_id"]
    assert "em" not in purchase and "ph" not in purchase  # nothing invented, nothing erased
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 1


def test_fbc_keeps_the_time_the_click_was_first_seen(
    harness: AppHarness,
    tenant: uuid.UUID,
    worker: RunningWorker,
    emulator: Emulator,
    session_factory: sessionmaker[Session],
) -> None:
    first_seen = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    later = first_seen + timedelta(hours=2)
    responses = [
        harness.send(
            tenant,
            "perspective",
            perspective_form("ps_1", fbclid="IwAR_FAKE", converted_at=first_seen),
        ),
        harness.send(
            tenant, "perspective", perspective_form("ps_2", fbclid="IwAR_FAKE", converted_at=later)
        ),
        harness.send(tenant, "chatbot", chatbot_lead("888")),  # no click id at all
    ]
    assert [r.status_code for r in responses] == [202, 202, 202]

    received = at_meta(emulator, *(r.json()["event_id"] for r in responses))
    expected = f"fb.1.{millis(first_seen)}.IwAR_FAKE"
    assert [user_data(received[r.json()["event_id"]])["fbc"] for r in responses] == [expected] * 3
    contact = only_contact(session_factory, tenant)
    assert (contact.fbc, contact.fbclid) == (expected, "IwAR_FAKE")
    assert contact.fbc_first_seen_at is not None
    assert contact.fbc_first_seen_at.replace(tzinfo=UTC) == first_seen
