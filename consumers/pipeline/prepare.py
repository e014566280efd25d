"""One decoded event -> the hashed Meta server event and its ``meta_capi_events`` row.

Pure functions of plain values (no I/O): normalise and hash every customer field with the
tenant's default country, build the ``ServerEvent``, decide expired / invalid / sendable.
This runs once per event on the worker's main thread, so ``user_data`` is built straight
from the event's typed fields in one pass (the generic ``build_user_data`` re-checks every
key's kind and shape); ``tests/consumers`` holds it equal to ``build_user_data``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from capi_stream.errors import EventValidationError
from capi_stream.event import ConversionEvent
from consumers.pipeline.enrich import ContactHints, resolve_ad_id, resolve_fbc
from meta_capi.hashing import hash_value, user_country
from meta_capi.server_event import ServerEvent, to_json_number
from meta_capi.validation import is_expired, validate_server_event
from storage.models import EventStatus

UserData = dict[str, str | list[str]]


class Prepared(NamedTuple):
    """What became of one event: a row, and a server event when it can be sent.

    ``status`` is ``pending`` (send it), ``expired`` (older than 7 days: record only) or
    ``dead`` (``error`` says which rule it breaks). A tuple, not a frozen dataclass: one is
    built per event and a tuple costs a third as much.
    """

    row: dict[str, Any]
    server_event: ServerEvent | None
    status: str
    error: EventValidationError | None = None


def build_custom_data(event: ConversionEvent) -> dict[str, object]:
    data = event.custom_data
    custom: dict[str, object] = {**data.extra}
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
    event: ConversionEvent, custom: dict[str, object]
) -> tuple[dict[str, object], EventValidationError | None]:
    """``custom`` as the row stores it (money as a JSON number, or text when it cannot be
    one), and the error when Meta could not take the amount as a JSON number."""
    stored = custom.copy()
    value = event.custom_data.value  # the one Decimal: extras are text
    if value is None:
        return stored, None
    try:
        stored["value"] = to_json_number(value)
    except EventValidationError as exc:
        stored["value"] = str(value)
        return stored, exc
    return stored, None


# Meta key <- UserIdentity field, whether the person's country reads it; in Meta's order.
_SINGLES = (
    ("fn", "first_name", False),
    ("ln", "last_name", False),
    ("ge", "gender", False),
    ("db", "date_of_birth", False),
    ("ct", "city", False),
    ("st", "state", True),
    ("zp", "zip", True),
    ("country", "country", False),
)


def _hashes(key: str, values: list[str], country: str | None) -> list[str]:
    hashes: list[str] = []
    for value in values:
        digest = hash_value(key, value, country)
        if digest is not None and digest not in hashes:
            hashes.append(digest)
    return hashes


def build_event_user_data(
    event: ConversionEvent, contact: ContactHints | None, default_country: str | None
) -> tuple[UserData, UserData]:
    """Meta's ``user_data`` for ``event`` and a copy for the row (its own lists).

    Exactly ``build_user_data`` of the event's fields: hashed keys normalised and hashed
    (``em``, ``ph``, ``external_id`` as de-duplicated lists, the internal contact id last in
    ``external_id``), click and browser ids from the event or else the contact, blank and
    unusable values left out, keys in Meta's order.
    """
    user = event.user
    country = user_country(user.country, default_country)
    data: UserData = {}
    stored: UserData = {}
    for key, values, local in (("em", user.emails, None), ("ph", user.phones, country)):
        if values and (hashes := _hashes(key, values, local)):
            data[key] = hashes
            stored[key] = hashes.copy()
    for key, name, by_country in _SINGLES:
        if (value := getattr(user, name)) and (
            digest := hash_value(key, value, country if by_country else None)
        ):
            data[key] = stored[key] = digest
    external_ids = user.external_ids
    if event.contact_id is not None:
        external_ids = [*external_ids, str(event.contact_id)]
    if external_ids and (hashes := _hashes("external_id", external_ids, None)):
        data["external_id"] = hashes
        stored["external_id"] = hashes.copy()
    plain = (
        ("client_ip_address", event.client_ip_address),
        ("client_user_agent", event.client_user_agent),
        ("fbc", resolve_fbc(event, contact)),
        ("fbp", event.attribution.fbp or (contact.fbp if contact else None)),
        ("ctwa_clid", user.ctwa_clid or (contact.ctwa_clid if contact else None)),
        ("page_id", user.page_id),
        ("page_scoped_user_id", user.page_scoped_user_id),
        ("ig_account_id", user.ig_account_id),
        ("ig_sid", user.ig_sid),
        ("whatsapp_business_account_id", user.whatsapp_business_account_id),
        ("lead_id", user.lead_id),
    )
    for key, text in plain:
        if text and not text.isspace():  # as ``text.strip()``, without the copy
            data[key] = stored[key] = text
    return data, stored


def _first(values: str | list[str] | None) -> str | None:
    return values[0] if values else None


def _row(
    event: ConversionEvent,
    user: UserData,
    stored: UserData,
    custom: dict[str, object],
    ad_id: str | None,
) -> dict[str, Any]:
    # The hash columns hold each key's (first) value; lists keep theirs in user_data.
    get = user.get
    return {
        "tenant_id": event.tenant_id,
        "event_id": event.event_id,
        "contact_id": event.contact_id,
        "event_name": event.event_name,
        "event_time": event.event_time,
        "action_source": event.action_source,
        "event_source_url": event.event_source_url,
        "source": event.source,
        "source_event_id": event.source_event_id,
        "user_data": stored,
        "ad_id": ad_id,
        "event_value": event.custom_data.value,
        "currency": event.custom_data.currency,
        "custom_data": custom,
        "status": EventStatus.PENDING,
        "user_email_hash": _first(get("em")),
        "user_phone_hash": _first(get("ph")),
        "user_first_name_hash": get("fn"),
        "user_last_name_hash": get("ln"),
        "user_gender_hash": get("ge"),
        "user_date_of_birth_hash": get("db"),
        "user_city_hash": get("ct"),
        "user_state_hash": get("st"),
        "user_zip_hash": get("zp"),
        "user_country_hash": get("country"),
        "user_external_id": _first(get("external_id")),
        "user_fbp": get("fbp"),
        "user_fbc": get("fbc"),
    }


def prepare_event(
    event: ConversionEvent,
    contact: ContactHints | None,
    *,
    default_country: str | None,
    now: datetime,
) -> Prepared:
    """Hash, build and validate one event; never raises for the event's own faults."""
    custom = build_custom_data(event)
    stored_custom, money_error = _stored_custom(event, custom)
    user, stored_user = build_event_user_data(event, contact, default_country)
    row = _row(event, user, stored_user, stored_custom, resolve_ad_id(event, contact))
    stamp = event.event_time.timestamp()  # once: an aware datetime's is not cheap
    if is_expired(stamp, now):
        return Prepared(row, None, EventStatus.EXPIRED)
    server_event = ServerEvent(
        event_name=event.event_name,
        event_time=int(stamp),
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
