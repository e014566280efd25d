"""Shared assembly for the event builders: hash, default, serialise-ready, validate."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TypedDict, Unpack

from capi_stream.event import ActionSource, MessagingChannel
from meta_capi.hashing import RawUserData, build_user_data
from meta_capi.server_event import ServerEvent
from meta_capi.validation import MetaEventValidationError, validate_server_event

Money = Decimal | int | str


def _event_time(event_time: datetime | int | None, now: datetime) -> int:
    if event_time is None:
        return int(now.timestamp())
    if isinstance(event_time, datetime):
        if event_time.tzinfo is None:
            raise MetaEventValidationError("event_time must carry a timezone", field="event_time")
        return int(event_time.timestamp())
    if isinstance(event_time, bool):
        raise MetaEventValidationError("event_time must be Unix seconds", field="event_time")
    return event_time


def _money(value: Money) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        # A float has already lost the cents it was meant to carry (0.1 + 0.2).
        raise MetaEventValidationError(
            "value must be a Decimal, int or str, not a float", field="custom_data.value"
        )
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise MetaEventValidationError(
            f"value {value!r} is not a number", field="custom_data.value"
        ) from exc


def _action_source(
    requested: ActionSource | None,
    event_source_url: str | None,
    user: Mapping[str, str | list[str]],
    messaging_channel: MessagingChannel | None,
) -> ActionSource:
    if requested is not None:
        return requested
    if event_source_url and user.get("client_user_agent"):
        return "website"
    if messaging_channel is not None:
        return "business_messaging"
    # No web or chat context: Meta's honest catch-all ('system_generated' means renewals).
    return "other"


class EventOptions(TypedDict, total=False):
    """Keyword options every builder takes (see ``create_event`` for the defaults)."""

    event_time: datetime | int | None
    action_source: ActionSource | None
    event_source_url: str | None
    referrer_url: str | None
    messaging_channel: MessagingChannel | None
    opt_out: bool | None
    custom_data: Mapping[str, object] | None
    default_country: str | None
    now: datetime | None


def build_event(
    event_name: str,
    *,
    user_data: RawUserData,
    event_id: str,
    money: tuple[Money, str] | None,
    standard: Mapping[str, object],
    **options: Unpack[EventOptions],
) -> ServerEvent:
    event_time = options.get("event_time")
    action_source = options.get("action_source")
    event_source_url = options.get("event_source_url")
    referrer_url = options.get("referrer_url")
    messaging_channel = options.get("messaging_channel")
    opt_out = options.get("opt_out")
    custom_data = options.get("custom_data")
    default_country = options.get("default_country")
    now = options.get("now")
    if not event_id or not event_id.strip():
        raise MetaEventValidationError("event_id is required for deduplication", field="event_id")
    clock = now or datetime.now(UTC)
    user = build_user_data(user_data, default_country=default_country)
    data: dict[str, object] = {k: v for k, v in standard.items() if v is not None}
    if money is not None:
        data["value"] = _money(money[0])
        data["currency"] = money[1].strip().upper()
    clash = sorted(set(custom_data or {}) & ({"value", "currency"} | set(data)))
    if clash:
        raise MetaEventValidationError(
            f"custom_data repeats builder arguments: {', '.join(clash)}",
            field=f"custom_data.{clash[0]}",
        )
    data.update(custom_data or {})
    event = ServerEvent(
        event_name=event_name,
        event_time=_event_time(event_time, clock),
        action_source=_action_source(action_source, event_source_url, user, messaging_channel),
        event_id=event_id,
        user_data=user,
        custom_data=data,
        event_source_url=event_source_url,
        referrer_url=referrer_url,
        messaging_channel=messaging_channel,
        opt_out=opt_out,
    )
    validate_server_event(event, now=clock)
    return event


def optional_money(value: Money | None, currency: str | None) -> tuple[Money, str] | None:
    if value is None and currency is None:
        return None
    if value is None or currency is None:
        raise MetaEventValidationError(
            "value and currency go together", field="custom_data.currency"
        )
    return value, currency
