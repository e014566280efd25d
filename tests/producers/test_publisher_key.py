"""``build_key``: one person per partition key, from the event alone (a table)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from capi_stream.event import ConversionEvent
from meta_capi.hashing import hash_email, hash_phone
from producers.publisher import build_key

TENANT = uuid.UUID("11111111-1111-1111-1111-111111111111")
CONTACT = uuid.UUID("22222222-2222-2222-2222-222222222222")
JANE = hash_email("jane@example.com")


def event(**fields: Any) -> ConversionEvent:
    return ConversionEvent.create(
        tenant_id=TENANT,
        source="api",
        source_event_id="order-1",
        event_name="Purchase",
        event_time=datetime(2026, 1, 1, tzinfo=UTC),
        action_source="other",
        **fields,
    )


@pytest.mark.parametrize(
    ("fields", "person"),
    [
        ({"contact_id": CONTACT, "user": {"emails": ["jane@example.com"]}}, str(CONTACT)),
        ({"user": {"emails": [" Jane@Example.COM "], "phones": ["+1 650 555 1212"]}}, f"em:{JANE}"),
        ({"user": {"emails": ["not an email", "jane@example.com"]}}, f"em:{JANE}"),
        ({"user": {"emails": [JANE]}}, f"em:{JANE}"),  # already hashed by an API publisher
        ({"user": {"phones": ["(650) 555-1212"]}}, f"ph:{hash_phone('(650) 555-1212', 'US')}"),
        (
            {"source_ids": {"stripe_customer_id": "cus_1", "ghl_contact_id": "g1"}},
            "ghl_contact_id:g1",
        ),
        ({"source_ids": {"denefits_contract_code": "D1"}}, "denefits_contract_code:D1"),
        ({}, "order-1"),
    ],
)
def test_the_key_names_the_person(fields: dict[str, Any], person: str) -> None:
    assert build_key(event(**fields), "US") == f"{TENANT}:{person}".encode()


def test_sources_agree_on_one_email() -> None:
    chat = event(user={"emails": ["jane@example.com"]}, source_ids={"mc_subscriber_id": "7"})
    paid = event(user={"emails": ["JANE@example.com"]}, source_ids={"stripe_customer_id": "c"})
    assert build_key(chat) == build_key(paid)
