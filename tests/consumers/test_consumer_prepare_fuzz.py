"""Whatever customer text an event carries, preparing it never raises: a bug here would
fail the whole batch it sits in, on every replay."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capi_stream.avro.codec import build_codec
from capi_stream.errors import EventValidationError
from capi_stream.event import ConversionEvent
from consumers.pipeline.enrich import ContactHints, resolve_fbc
from consumers.pipeline.prepare import build_custom_data, prepare_event
from consumers.pipeline.redact import hash_identity
from meta_capi.hashing import build_user_data
from meta_capi.server_event import ServerEvent
from meta_capi.validation import validate_server_event

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
CODEC = build_codec()

# Text shaped like what each field may really hold, mixed with anything at all.
_ANY = st.text(min_size=1, max_size=60).filter(lambda s: s.strip() and "\x00" not in s)
_LIKELY = st.sampled_from(
    [
        "+1 (650) 555-1212",
        "0044 20 7946 0958",
        "(0)30 1234567",
        "+",
        "00",
        "555",
        "12/31/1999",
        "1999-02-30",
        "31.12.1999",
        "Female",
        "M",
        "x",
        "United Kingdom",
        "GBR",
        "gb",
        "zz",
        "California",
        "N.Y.",
        "SW1A 1AA",
        "94025-1234",
        "JOHN@EXAMPLE.COM",
        "a@b",
        "@",
        "é@ü.de",
        "f" * 64,
        "F" * 64,
        "0" * 32,
        "fb.1.1596403881668.IwAR",
        "fb.1.x.y",
        "IwAR" + "z" * 500,
    ]
)
_TEXT = _LIKELY | _ANY
_COUNTRIES = st.none() | st.sampled_from(["US", "GB", "DE", "JP", "BR", "ZZ"])


@st.composite
def _events(draw: st.DrawFn) -> ConversionEvent:
    fields: dict[str, Any] = {
        "event_name": draw(st.sampled_from(["Lead", "Purchase", "AddToCart", "Custom"])),
        "event_time": NOW - timedelta(minutes=draw(st.integers(0, 11_000))),
        "action_source": draw(
            st.sampled_from(["website", "system_generated", "chat", "business_messaging", "other"])
        ),
        "messaging_channel": draw(st.none() | st.sampled_from(["whatsapp", "instagram"])),
        "event_source_url": draw(st.none() | st.just("https://shop.example.com/x")),
        "client_user_agent": draw(st.none() | _TEXT),
        "client_ip_address": draw(st.none() | st.sampled_from(["203.0.113.7", "::1", "nope"])),
        "user": {
            "emails": draw(st.lists(_TEXT, max_size=3)),
            "phones": draw(st.lists(_TEXT, max_size=3)),
            "external_ids": draw(st.lists(_TEXT, max_size=2)),
            **{
                name: draw(st.none() | _TEXT)
                for name in (
                    "first_name",
                    "last_name",
                    "gender",
                    "date_of_birth",
                    "city",
                    "state",
                    "zip",
                    "country",
                    "page_scoped_user_id",
                    "ctwa_clid",
                    "lead_id",
                )
            },
        },
        "attribution": {
            name: draw(st.none() | _TEXT) for name in ("fbclid", "fbc", "fbp", "ad_id")
        },
        "custom_data": {
            "value": draw(
                st.none()
                | st.decimals(min_value=0, max_value=Decimal(10**15), places=4, allow_nan=False)
            ),
            "currency": draw(st.none() | st.sampled_from(["USD", "jpy", "XXX", "ABC"])),
            "extra": draw(st.dictionaries(_ANY, _ANY, max_size=3)),
        },
    }
    return ConversionEvent.create(
        tenant_id=uuid.uuid4(), source="api", source_event_id=draw(_ANY), **fields
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=_events(), country=_COUNTRIES, known_fbc=st.booleans())
def test_preparing_any_event_never_raises(
    event: ConversionEvent, country: str | None, known_fbc: bool
) -> None:
    known = ContactHints(uuid.uuid4(), fbc="fb.1.1596403881668.IwAR_known", fbp="fb.1.1.1")
    hints = known if known_fbc else None
    prepared = prepare_event(event, hints, default_country=country, now=NOW)

    assert prepared.status in {"pending", "expired", "dead"}
    json.dumps(prepared.row, default=str)  # the row is storable as the upsert sends it
    for column, value in prepared.row.items():
        if column.endswith("_hash") and value is not None:
            assert len(value) == 64, column
    if prepared.server_event is not None:
        json.dumps(prepared.server_event.user_data)
    # The forward of this event (retry tiers, dead letters) can always be built.
    CODEC.encode(hash_identity(event, country))


# The generic path prepare_event's one-pass user_data must equal: the raw Meta mapping of
# the event (as the worker built it before), then build_user_data.
_SINGLE_FIELDS = {
    "fn": "first_name",
    "ln": "last_name",
    "ge": "gender",
    "db": "date_of_birth",
    "ct": "city",
    "st": "state",
    "zp": "zip",
    "country": "country",
}
_MESSAGING_FIELDS = (
    "page_id",
    "page_scoped_user_id",
    "ig_account_id",
    "ig_sid",
    "whatsapp_business_account_id",
    "lead_id",
)


def _reference_user_data(
    event: ConversionEvent, contact: ContactHints | None, country: str | None
) -> dict[str, str | list[str]]:
    user = event.user
    raw: dict[str, str | list[str] | None] = {"em": list(user.emails), "ph": list(user.phones)}
    raw |= {key: getattr(user, name) for key, name in _SINGLE_FIELDS.items()}
    raw["external_id"] = [*user.external_ids, *([str(event.contact_id)] * bool(event.contact_id))]
    raw["client_ip_address"] = event.client_ip_address
    raw["client_user_agent"] = event.client_user_agent
    raw["fbc"] = resolve_fbc(event, contact)
    raw["fbp"] = event.attribution.fbp or (contact.fbp if contact else None)
    raw["ctwa_clid"] = user.ctwa_clid or (contact.ctwa_clid if contact else None)
    raw |= {name: getattr(user, name) for name in _MESSAGING_FIELDS}
    filled = {key: value for key, value in raw.items() if value}
    return build_user_data(filled, default_country=country)


_FIRST_OF = {
    "user_email_hash": "em",
    "user_phone_hash": "ph",
    "user_external_id": "external_id",
}
_COLUMN_OF = {
    "user_first_name_hash": "fn",
    "user_last_name_hash": "ln",
    "user_gender_hash": "ge",
    "user_date_of_birth_hash": "db",
    "user_city_hash": "ct",
    "user_state_hash": "st",
    "user_zip_hash": "zp",
    "user_country_hash": "country",
    "user_fbp": "fbp",
    "user_fbc": "fbc",
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event=_events(),
    country=_COUNTRIES,
    known_fbc=st.booleans(),
    contact_id=st.none() | st.uuids(),
    website=st.booleans(),
    blank=st.booleans(),
)
def test_prepare_equals_the_generic_build_and_full_validation(
    event: ConversionEvent,
    country: str | None,
    known_fbc: bool,
    contact_id: uuid.UUID | None,
    website: bool,
    blank: bool,
) -> None:
    update: dict[str, Any] = {"contact_id": contact_id}
    if website:  # reaches the rules on event_source_url and the user agent
        update["action_source"] = "website"
    if blank:  # validation strips text, a decoded record is not validated again
        blanks = {"first_name": " ", "lead_id": "\t", "phones": [" "]}
        update["client_user_agent"] = " \t"
        update["user"] = event.user.model_copy(update=blanks)
    event = event.model_copy(update=update)
    known = ContactHints(uuid.uuid4(), fbc="fb.1.1596403881668.IwAR_k", ctwa_clid="c1")
    hints = known if known_fbc else None
    prepared = prepare_event(event, hints, default_country=country, now=NOW)

    expected = _reference_user_data(event, hints, country)
    row = prepared.row
    assert row["user_data"] == expected
    assert list(row["user_data"]) == list(expected)  # Meta's key order, kept in the JSON
    for column, key in _FIRST_OF.items():
        assert row[column] == (expected[key][0] if key in expected else None), column
    for column, key in _COLUMN_OF.items():
        assert row[column] == expected.get(key), column
    # Status and error as the full validation (every key and hash re-checked) decides them.
    full = ServerEvent(
        event_name=event.event_name,
        event_time=int(event.event_time.timestamp()),
        action_source=event.action_source,
        user_data=expected,
        event_id=event.event_id,
        custom_data=build_custom_data(event),
        event_source_url=event.event_source_url,
        messaging_channel=event.messaging_channel,
    )
    if prepared.status == "expired":
        return
    try:
        validate_server_event(full, now=NOW)
    except EventValidationError as exc:
        assert prepared.status == "dead"
        assert prepared.error is not None and str(prepared.error) == str(exc)
        return
    if prepared.status == "dead":  # money a JSON number cannot carry exactly
        assert prepared.error is not None and "precision" in str(prepared.error)
    else:
        assert prepared.server_event == full
