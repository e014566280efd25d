"""Money and identity end to end: JPY/KWD exponents, merge without erasure, fbc first-seen."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.event import ConversionEvent
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames
from meta_capi.hashing import hash_field
from storage.contacts import record_contact
from storage.models import Contact
from tests.integration.webhook_fixtures import (
    AppHarness,
    chatbot_lead,
    perspective_form,
    read_topic,
    seed_tenant,
    stripe_payment,
    test_runtime,
)


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
    return seed_tenant(session_factory)


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


def _contact(sessions: sessionmaker[Session], contact_id: uuid.UUID) -> Contact:
    with sessions() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        return contact


def test_later_webhook_with_nulls_does_not_erase_identity_and_ad_id_is_first_touch(
    harness: AppHarness,
    tenant: uuid.UUID,
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    session_factory: sessionmaker[Session],
) -> None:
    first = harness.send(tenant, "chatbot", chatbot_lead("777", ad_id="120200000000000001"))
    bare = harness.send(tenant, "chatbot", chatbot_lead("777", email=None, phone="+1 555 0100",
                                                        ad_id="999"))  # fmt: skip
    paid = harness.send(tenant, "stripe", stripe_payment("pi_777", customer="cus_777"))
    assert [r.status_code for r in (first, bare, paid)] == [202, 202, 202]

    events = [p.event for p in read_topic(kafka_config, topic_names.main)]
    contact_ids = {e.contact_id for e in events}
    assert len(contact_ids) == 1  # the Stripe payer was linked by email to the Lead's contact
    contact = _contact(session_factory, contact_ids.pop())  # type: ignore[arg-type]
    assert contact.mc_subscriber_id == "777"
    assert contact.stripe_customer_id == "cus_777"
    assert contact.email_hash == hash_field("em", "jane@example.com")
    assert contact.phone_hash == hash_field("ph", "+1 555 0100")
    assert contact.ad_id == "120200000000000001"
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 1


def test_fbc_keeps_the_time_the_click_was_first_seen(
    harness: AppHarness,
    tenant: uuid.UUID,
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    session_factory: sessionmaker[Session],
) -> None:
    first_seen = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    later = first_seen + timedelta(hours=2)
    one = harness.send(
        tenant, "perspective", perspective_form("ps_1", fbclid="IwAR_FAKE", converted_at=first_seen)
    )
    two = harness.send(
        tenant, "perspective", perspective_form("ps_2", fbclid="IwAR_FAKE", converted_at=later)
    )
    lead = harness.send(tenant, "chatbot", chatbot_lead("888"))  # no click id at all
    assert [r.status_code for r in (one, two, lead)] == [202, 202, 202]  # fmt: skip

    [contact_id] = {p.event.contact_id for p in read_topic(kafka_config, topic_names.main)}
    contact = _contact(session_factory, contact_id)  # type: ignore[arg-type]
    first_ms = int(first_seen.timestamp() * 1000)
    assert contact.fbc == f"fb.1.{first_ms}.IwAR_FAKE"
    assert contact.fbclid == "IwAR_FAKE"
    assert contact.fbc_first_seen_at is not None
    assert contact.fbc_first_seen_at.replace(tzinfo=UTC) == first_seen


def test_concurrent_first_inserts_of_one_contact_do_not_fail(
    session_factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    event = ConversionEvent.create(
        tenant_id=tenant, source="chatbot", source_event_id="race:qualified",
        event_name="Lead", event_time=datetime.now(UTC), action_source="chat",
        user={"emails": ["race@example.com"]}, source_ids={"mc_subscriber_id": "race"},
    )  # fmt: skip
    results: list[uuid.UUID] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def work() -> None:
        try:
            with session_factory() as session:
                barrier.wait()
                contact_id = record_contact(session, event, "US")
                session.commit()
                results.append(contact_id)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(set(results)) == 1 and len(results) == 6
