"""Events read with the current schema skip pydantic only when pydantic would agree."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from capi_stream.avro.codec import SingleObjectCodec, event_to_record, load_schema
from capi_stream.avro.compiled import compile_reader
from capi_stream.avro.trusted import EVENT_RULES, MODELS
from capi_stream.errors import DecodeError
from capi_stream.event import ConversionEvent, Source

SCHEMA = load_schema()
CODEC = SingleObjectCodec(SCHEMA)
TRUSTED = compile_reader(SCHEMA, EVENT_RULES)


def make_event(**overrides: Any) -> ConversionEvent:
    fields: dict[str, Any] = {
        "event_name": "Purchase",
        "event_time": datetime(2026, 11, 28, 10, 30, 15, 123000, tzinfo=UTC),
        "action_source": "website",
        "event_source_url": "https://shop.example.com/thanks",
        "client_user_agent": "Mozilla/5.0",
        "contact_id": uuid.uuid4(),
        "user": {"emails": ["jane@example.com"], "phones": ["+15550100"], "first_name": "Jane"},
        "attribution": {"fbclid": "IwAR2F4", "click_time": datetime(2026, 11, 27, tzinfo=UTC)},
        "custom_data": {"value": Decimal("12.5"), "currency": "USD", "extra": {"k": "v"}},
    }
    return ConversionEvent.create(
        tenant_id=uuid.uuid4(), source="stripe", source_event_id="pi_1", **(fields | overrides)
    )


def body(record: dict[str, Any]) -> bytes:
    return CODEC.encode_with(SCHEMA, record)


def test_the_trusted_event_is_the_validated_event() -> None:
    event = make_event()
    data = CODEC.encode(event)
    trusted = TRUSTED(data, 10)
    assert isinstance(trusted, ConversionEvent)
    validated = ConversionEvent.model_validate(event_to_record(event))
    assert trusted == validated == event
    assert trusted.model_dump() == validated.model_dump()
    assert trusted.model_fields_set == validated.model_fields_set
    assert isinstance(trusted.tenant_id, uuid.UUID) and isinstance(trusted.contact_id, uuid.UUID)
    assert hash(trusted.tenant_id) == hash(event.tenant_id)
    # still frozen, and model_copy still works on what was built without validation
    with pytest.raises(ValueError, match="frozen"):
        trusted.event_name = "Lead"
    assert trusted.model_copy(update={"contact_id": None}).contact_id is None


def test_every_trusted_record_holds_the_state_of_its_validated_record() -> None:
    # The reader fills pydantic's slots itself: none may be left out or differ.
    event = make_event()
    trusted = TRUSTED(CODEC.encode(event), 10)
    validated = ConversionEvent.model_validate(event_to_record(event))
    for name in (None, "user", "source_ids", "attribution", "custom_data"):
        mine = trusted if name is None else getattr(trusted, name)
        theirs = validated if name is None else getattr(validated, name)
        assert type(mine) is type(theirs)
        assert mine.__getstate__() == theirs.__getstate__()


def test_models_built_without_validation_have_nothing_model_construct_would_add() -> None:
    for model in MODELS.values():
        assert issubclass(model, BaseModel)
        assert not model.__private_attributes__
        assert not model.__pydantic_post_init__
        assert model.model_config.get("extra") != "allow"


def _string_fields(schema: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for field in schema["fields"]:
        branches = field["type"] if isinstance(field["type"], list) else [field["type"]]
        for branch in branches:
            if isinstance(branch, dict) and branch.get("type") == "record":
                found |= _string_fields(branch)
            elif branch == "string" or (
                isinstance(branch, dict)
                and (branch.get("items") == "string" or branch.get("values") == "string")
            ):
                found.add(f"{schema['name']}.{field['name']}")
    return found


def test_every_text_of_the_schema_has_a_rule() -> None:
    ruled = set(EVENT_RULES.text_limits) | set(EVENT_RULES.choices) | set(EVENT_RULES.checks)
    assert _string_fields(SCHEMA) <= ruled
    assert {f"ConversionEvent.{n}" for n in ("source", "action_source")} <= set(EVENT_RULES.choices)


def _record_with(path: str, value: Any) -> dict[str, Any]:
    record = event_to_record(make_event())
    model, name = path.split(".")
    target = record if model == "ConversionEvent" else record[_NESTED[model]]
    key = name.rstrip("{}")
    current = target[key]
    if isinstance(current, list):
        target[key] = [value]
    elif isinstance(current, dict) or name.endswith("{}"):
        target[key] = {value: "v"} if name.endswith("{}") else {"k": value}
    else:
        target[key] = value
    return record


_NESTED = {
    "UserIdentity": "user",
    "SourceIds": "source_ids",
    "Attribution": "attribution",
    "CustomData": "custom_data",
}
_LIMITS = sorted(EVENT_RULES.text_limits.items())


@pytest.mark.parametrize(("path", "limit"), _LIMITS, ids=[p for p, _ in _LIMITS])
def test_text_the_model_refuses_is_refused_by_pydantic_not_trusted(path: str, limit: int) -> None:
    at_limit = _record_with(path, "x" * limit)
    assert CODEC.decode(body(at_limit)) == ConversionEvent.model_validate(at_limit)
    for bad in ("x" * (limit + 1), "", "a\x00b"):
        with pytest.raises(DecodeError):
            CODEC.decode(body(_record_with(path, bad)))
    padded = _record_with(path, " padded\u2003")
    with pytest.raises(ValueError):
        TRUSTED(body(padded), 10)
    assert CODEC.decode(body(padded)) == ConversionEvent.model_validate(padded)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("ConversionEvent.source", "shopify"),
        ("ConversionEvent.action_source", "web"),
        ("ConversionEvent.messaging_channel", "sms"),
        ("CustomData.currency", "US"),
        ("CustomData.currency", "US1"),
        ("CustomData.num_items", -1),
        ("CustomData.value", Decimal("-1")),
    ],
)
def test_values_outside_the_model_are_decode_errors(path: str, value: Any) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(body(_record_with(path, value)))


def test_what_pydantic_would_change_is_left_to_pydantic() -> None:
    record = _record_with("CustomData.currency", "usd")
    record["tenant_id"] = str(record["tenant_id"]).upper()
    with pytest.raises(ValueError):
        TRUSTED(body(record), 10)
    event = CODEC.decode(body(record))
    assert event.custom_data.currency == "USD"
    assert event == ConversionEvent.model_validate(record)


def test_every_name_the_model_knows_is_trusted_and_list_sizes_hold() -> None:
    assert EVENT_RULES.choices["ConversionEvent.source"] == frozenset(get_args(Source))
    event = make_event(user={"emails": [f"a{i}@example.com" for i in range(10)]})
    assert isinstance(TRUSTED(CODEC.encode(event), 10), ConversionEvent)
    too_many = event_to_record(event)
    too_many["user"]["emails"].append("k@example.com")
    with pytest.raises(DecodeError):
        CODEC.decode(body(too_many))


def test_with_contact_id_is_model_copy_without_its_cost() -> None:
    from consumers.pipeline.contacts import with_contact_id

    event = CODEC.decode(CODEC.encode(make_event()))  # built by the trusted reader
    contact = uuid.uuid4()
    copied = with_contact_id(event, contact)
    expected = event.model_copy(update={"contact_id": contact})
    assert copied == expected and copied.contact_id == contact
    assert copied.model_fields_set == expected.model_fields_set
    assert event.contact_id != contact  # the original is untouched


def test_absent_sub_records_share_one_instance_equal_to_the_validated_one() -> None:
    records = [event_to_record(make_event(attribution={})) for _ in range(2)]
    first, second = (CODEC.decode(body(record)) for record in records)
    assert first.source_ids is second.source_ids  # nothing set: one frozen instance
    assert first.attribution is second.attribution
    for record, event in zip(records, (first, second), strict=True):
        validated = ConversionEvent.model_validate(record)
        assert event == validated and event.model_dump() == validated.model_dump()
        assert event.attribution.model_fields_set == validated.attribution.model_fields_set
    copied = first.attribution.model_copy(update={"fbc": "fb.1.2.x"})
    assert copied.fbc == "fb.1.2.x" and second.attribution.fbc is None
    assert "fbc" in copied.model_fields_set
    set_one = make_event(source_ids={"ghl_contact_id": "c-1"})
    decoded = CODEC.decode(CODEC.encode(set_one))
    assert decoded.source_ids.ghl_contact_id == "c-1" and decoded == set_one


def test_a_copy_leaves_the_shared_fields_set_of_other_events_alone() -> None:
    first, second = (CODEC.decode(CODEC.encode(make_event())) for _ in range(2))
    before = set(second.model_fields_set)
    first.model_copy(update={"delivery_id": "d-1"}).model_fields_set.add("extra-name")
    assert second.model_fields_set == before == set(ConversionEvent.model_fields)


def test_tenant_ids_are_one_object_per_text_and_the_cache_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from capi_stream.avro import _runtime

    reader = compile_reader(SCHEMA, EVENT_RULES)  # a cache of its own

    def tenant_of(tenant: uuid.UUID) -> Any:
        data = CODEC.encode(make_event().model_copy(update={"tenant_id": tenant}))
        event: Any = reader(data, 10)  # the event model (typed as the plain reader's dict)
        return event.tenant_id

    tenant = uuid.uuid4()
    first = tenant_of(tenant)
    assert first == tenant and tenant_of(tenant) is first
    monkeypatch.setattr(_runtime, "_INTERNED_UUIDS", 2)
    for other in [uuid.uuid4() for _ in range(3)]:
        assert tenant_of(other) == other
    assert tenant_of(tenant) == tenant  # read again after the cache started over


def test_money_beyond_the_schemas_precision_is_left_to_pydantic() -> None:
    wide = copy.deepcopy(SCHEMA)  # same body layout: precision is not in the bytes
    custom = next(f for f in wide["fields"] if f["name"] == "custom_data")["type"]
    next(f for f in custom["fields"] if f["name"] == "value")["type"][1]["precision"] = 30
    record = _record_with("CustomData.value", Decimal("12345678901234567.0001"))  # 21 digits
    data = CODEC.encode_with(SCHEMA, _record_with("CustomData.value", Decimal("1")))
    data = data[:10] + CODEC.encode_with(wide, record)[10:]
    with pytest.raises(ValueError):
        TRUSTED(data, 10)
    with pytest.raises(DecodeError):
        CODEC.decode(data)
