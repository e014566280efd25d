"""The event model's hand-written fast paths agree with the slow ones they replace."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from capi_stream.event import (
    EVENT_ID_NAMESPACE,
    Attribution,
    ConversionEvent,
    CustomData,
    SourceIds,
    UserIdentity,
    build_event_id,
)

TENANT = uuid.UUID("0b7e4f0c-52a4-4bd6-9f0e-3c1d9a1f2b77")


def test_event_id_is_pinned() -> None:
    # Ids already on the topic and in Meta must never change.
    assert build_event_id(TENANT, "stripe", "pi_1") == "2dcea6be-351e-5015-a691-ae7bc2c27d31"


@pytest.mark.parametrize("source_event_id", ["pi_1", "x" * 300, "é ü 中文 🎉", "a:b:c", ""])
@pytest.mark.parametrize("tenant", [TENANT, str(TENANT), "not-a-uuid"])
def test_event_id_matches_uuid5(tenant: uuid.UUID | str, source_event_id: str) -> None:
    key = f"{tenant}:stripe:{source_event_id}"
    assert build_event_id(tenant, "stripe", source_event_id) == str(
        uuid.uuid5(EVENT_ID_NAMESPACE, key)
    )


def test_event_id_matches_uuid5_across_variant_digits() -> None:
    seen = set()
    for n in range(200):  # every value of the variant nibble shows up
        expected = str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{TENANT}:api:{n}"))
        assert build_event_id(TENANT, "api", str(n)) == expected
        seen.add(expected[19])
    assert seen == set("89ab")


def test_event_id_refuses_a_lone_surrogate_like_uuid5() -> None:
    with pytest.raises(UnicodeEncodeError):
        build_event_id(TENANT, "api", "\ud800")


def test_missing_sub_models_equal_validated_empty_ones() -> None:
    fields: dict[str, Any] = {
        "tenant_id": TENANT,
        "source": "api",
        "source_event_id": "o-1",
        "event_name": "Purchase",
        "event_time": "2026-01-01T00:00:00Z",
        "action_source": "website",
    }
    event = ConversionEvent.create(**fields)
    explicit = ConversionEvent.create(
        **fields, user={}, source_ids={}, attribution={}, custom_data={}
    )
    assert event == explicit
    assert event.model_dump() == explicit.model_dump()
    assert event.user == UserIdentity.model_validate({})
    assert event.source_ids == SourceIds.model_validate({})
    assert event.attribution == Attribution.model_validate({})
    assert event.custom_data == CustomData.model_validate({})
