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
from capi_stream.event import ConversionEvent
from consumers.pipeline.enrich import ContactHints
from consumers.pipeline.prepare import prepare_event
from consumers.pipeline.redact import hash_identity

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
