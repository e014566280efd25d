"""One decoded event -> the hashed Meta server event and its ``meta_capi_events`` row.

Pure functions of plain values (no I/O): normalise and hash every customer field with the
tenant's default country, build the ``ServerEvent``, decide expired / invalid / sendable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from capi_stream.errors import EventValidationError
from capi_stream.event import ConversionEvent
from consumers.pipeline.enrich import ContactHints, raw_user_data, resolve_ad_id
from meta_capi.hashing import build_user_data
from meta_capi.server_event import ServerEvent, to_json_number
from meta_capi.validation import is_expired, validate_server_event
from storage.models import EventStatus

UserData = dict[str, str | list[str]]

# Row column <- Meta user_data key (lists keep their first value in the column).
_HASH_COLUMNS = {
    "user_email_hash": "em",
    "user_phone_hash": "ph",
    "user_first_name_hash": "fn",
    "user_last_name_hash": "ln",
    "user_gender_hash": "ge",
    "user_date_of_birth_hash": "db",
    "user_city_hash": "ct",
    "user_state_hash": "st",
    "user_zip_hash": "zp",
    "user_country_hash": "country",
    "user_external_id": "external_id",
    "user_fbp": "fbp",
    "user_fbc": "fbc",
}


@dataclass(frozen=True, slots=True)
class Prepared:
    """What became of one event: a row, and a server event when it can be sent.

    ``status`` is ``pending`` (send it), ``expired`` (older than 7 days: record only) or
    ``dead`` (``error`` says which rule it breaks).
    """

    row: dict[str, Any]
    server_event: ServerEvent | None
    status: str
    error: EventValidationError | None = None


def build_custom_data(event: ConversionEvent) -> dict[str, object]:
    data = event.custom_data
    custom: dict[str, object] = dict(data.extra)
    # The standard fields override same-named extras in place, None and [] are left out.
    if data.value is not None:
        custom["value"] = data.value
    if data.currency is not None:
        custom["currency"] = data.currency
    if data.order_id is not None:
        custom["order_id"] = data.order_id
    if data.content_name is not None:
        custom["content_name"] = data.content_name
    if data.content_category is not None:
        custom["content_category"] = data.content_category
    if data.content_ids:
        custom["content_ids"] = list(data.content_ids)
    if data.num_items is not None:
        custom["num_items"] = data.num_items
    return custom


def _stored_custom(
    custom: dict[str, object],
) -> tuple[dict[str, object], EventValidationError | None]:
    """``custom`` as the row stores it (money as JSON numbers, or text when it cannot be
    one), and the first amount Meta could not take as a JSON number."""
    stored = dict(custom)
    error = None
    for key, value in custom.items():
        if isinstance(value, Decimal):
            try:
                stored[key] = to_json_number(value)
            except EventValidationError as exc:
                stored[key] = str(value)
                error = error or exc
    return stored, error


# The row's columns start empty; a user_data key fills its column with its (first) value.
_NO_HASHES: dict[str, str | None] = dict.fromkeys(_HASH_COLUMNS)
_COLUMN_OF = {key: column for column, key in _HASH_COLUMNS.items()}


def _row(
    event: ConversionEvent, user: UserData, custom: dict[str, object], ad_id: str | None
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "tenant_id": event.tenant_id,
        "event_id": event.event_id,
        "contact_id": event.contact_id,
        "event_name": event.event_name,
        "event_time": event.event_time,
        "action_source": event.action_source,
        "event_source_url": event.event_source_url,
        "source": event.source,
        "source_event_id": event.source_event_id,
        "user_data": None,
        "ad_id": ad_id,
        "event_value": event.custom_data.value,
        "currency": event.custom_data.currency,
        "custom_data": custom,
        "status": EventStatus.PENDING,
        **_NO_HASHES,
    }
    stored: UserData = {}  # a copy: the server event keeps its own lists
    for key, value in user.items():
        if isinstance(value, list):
            stored[key] = list(value)
            first = value[0] if value else None
        else:
            stored[key] = first = value
        column = _COLUMN_OF.get(key)
        if column is not None:
            row[column] = first
    row["user_data"] = stored
    return row


def prepare_event(
    event: ConversionEvent,
    contact: ContactHints | None,
    *,
    default_country: str | None,
    now: datetime,
) -> Prepared:
    """Hash, build and validate one event; never raises for the event's own faults."""
    custom = build_custom_data(event)
    stored_custom, money_error = _stored_custom(custom)
    ad_id = resolve_ad_id(event, contact)
    try:
        user = build_user_data(raw_user_data(event, contact), default_country=default_country)
    except EventValidationError as exc:
        return Prepared(_row(event, {}, stored_custom, ad_id), None, EventStatus.DEAD, exc)
    row = _row(event, user, stored_custom, ad_id)
    if is_expired(event.event_time, now):
        return Prepared(row, None, EventStatus.EXPIRED)
    server_event = ServerEvent(
        event_name=event.event_name,
        event_time=int(event.event_time.timestamp()),
        action_source=event.action_source,
        user_data=user,
        event_id=event.event_id,
        custom_data=custom,
        event_source_url=event.event_source_url,
        messaging_channel=event.messaging_channel,
    )
    try:
        validate_server_event(server_event, now=now, hashed_here=True)
    except EventValidationError as exc:
        return Prepared(row, None, EventStatus.DEAD, exc)
    if money_error is not None:  # money must survive as a JSON number
        return Prepared(row, None, EventStatus.DEAD, money_error)
    return Prepared(row, server_event, EventStatus.PENDING)
