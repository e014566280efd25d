"""Builders for the standard events this project sends; each returns a validated ServerEvent.

Names follow the integration directive. Every builder hashes ``user_data`` (raw or already
hashed values are both accepted), picks a sensible ``action_source`` and runs
``validate_server_event`` so an invalid event never reaches a batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from capi_stream.event import ActionSource, MessagingChannel
from meta_capi._assemble import Money, build_event, optional_money
from meta_capi.hashing import RawUserData
from meta_capi.server_event import ServerEvent

__all__ = [
    "create_add_to_cart_event",
    "create_event",
    "create_initiate_checkout_event",
    "create_lead_event",
    "create_purchase_event",
]


def create_event(
    event_name: str,
    *,
    user_data: RawUserData,
    event_id: str,
    event_time: datetime | int | None = None,
    action_source: ActionSource | None = None,
    event_source_url: str | None = None,
    referrer_url: str | None = None,
    messaging_channel: MessagingChannel | None = None,
    opt_out: bool | None = None,
    value: Money | None = None,
    currency: str | None = None,
    custom_data: Mapping[str, object] | None = None,
    default_country: str | None = None,
    now: datetime | None = None,
) -> ServerEvent:
    """Build and validate any named event (e.g. 'LeadSubmitted' for business messaging).

    ``action_source`` defaults to 'website' when ``event_source_url`` and a
    ``client_user_agent`` are given, to 'business_messaging' when ``messaging_channel`` is,
    else to 'other'. ``now`` (timezone-aware) fixes the clock for ``event_time`` and checks.

    Raises:
        MetaEventValidationError: the event breaks a rule (see ``validate_server_event``).
    """
    return build_event(
        event_name,
        user_data=user_data,
        event_id=event_id,
        event_time=event_time,
        action_source=action_source,
        event_source_url=event_source_url,
        referrer_url=referrer_url,
        messaging_channel=messaging_channel,
        opt_out=opt_out,
        money=optional_money(value, currency),
        standard={},
        custom_data=custom_data,
        default_country=default_country,
        now=now,
    )


def create_lead_event(
    *,
    user_data: RawUserData,
    event_id: str,
    event_time: datetime | int | None = None,
    action_source: ActionSource | None = None,
    event_source_url: str | None = None,
    referrer_url: str | None = None,
    messaging_channel: MessagingChannel | None = None,
    opt_out: bool | None = None,
    value: Money | None = None,
    currency: str | None = None,
    content_name: str | None = None,
    custom_data: Mapping[str, object] | None = None,
    default_country: str | None = None,
    now: datetime | None = None,
) -> ServerEvent:
    """Build a validated 'Lead' event; defaults as ``create_event``.

    Meta's business-messaging list has no 'Lead' (it has 'LeadSubmitted'), so Lead with
    ``action_source='business_messaging'`` is refused (subcode 2804066).
    """
    return build_event(
        "Lead",
        user_data=user_data,
        event_id=event_id,
        event_time=event_time,
        action_source=action_source,
        event_source_url=event_source_url,
        referrer_url=referrer_url,
        messaging_channel=messaging_channel,
        opt_out=opt_out,
        money=optional_money(value, currency),
        standard={"content_name": content_name},
        custom_data=custom_data,
        default_country=default_country,
        now=now,
    )


def create_add_to_cart_event(
    *,
    user_data: RawUserData,
    event_id: str,
    event_time: datetime | int | None = None,
    action_source: ActionSource | None = None,
    event_source_url: str | None = None,
    referrer_url: str | None = None,
    messaging_channel: MessagingChannel | None = None,
    opt_out: bool | None = None,
    value: Money | None = None,
    currency: str | None = None,
    content_ids: Sequence[str] | None = None,
    custom_data: Mapping[str, object] | None = None,
    default_country: str | None = None,
    now: datetime | None = None,
) -> ServerEvent:
    """Build a validated 'AddToCart' event; defaults as ``create_event``."""
    return build_event(
        "AddToCart",
        user_data=user_data,
        event_id=event_id,
        event_time=event_time,
        action_source=action_source,
        event_source_url=event_source_url,
        referrer_url=referrer_url,
        messaging_channel=messaging_channel,
        opt_out=opt_out,
        money=optional_money(value, currency),
        standard={"content_ids": list(content_ids) if content_ids else None},
        custom_data=custom_data,
        default_country=default_country,
        now=now,
    )


def create_initiate_checkout_event(
    *,
    user_data: RawUserData,
    event_id: str,
    event_time: datetime | int | None = None,
    action_source: ActionSource | None = None,
    event_source_url: str | None = None,
    referrer_url: str | None = None,
    messaging_channel: MessagingChannel | None = None,
    opt_out: bool | None = None,
    value: Money | None = None,
    currency: str | None = None,
    content_ids: Sequence[str] | None = None,
    num_items: int | None = None,
    custom_data: Mapping[str, object] | None = None,
    default_country: str | None = None,
    now: datetime | None = None,
) -> ServerEvent:
    """Build a validated 'InitiateCheckout' event; defaults as ``create_event``."""
    return build_event(
        "InitiateCheckout",
        user_data=user_data,
        event_id=event_id,
        event_time=event_time,
        action_source=action_source,
        event_source_url=event_source_url,
        referrer_url=referrer_url,
        messaging_channel=messaging_channel,
        opt_out=opt_out,
        money=optional_money(value, currency),
        standard={
            "content_ids": list(content_ids) if content_ids else None,
            "num_items": num_items,
        },
        custom_data=custom_data,
        default_country=default_country,
        now=now,
    )


def create_purchase_event(
    *,
    user_data: RawUserData,
    event_id: str,
    value: Money,
    currency: str,
    event_time: datetime | int | None = None,
    action_source: ActionSource | None = None,
    event_source_url: str | None = None,
    referrer_url: str | None = None,
    messaging_channel: MessagingChannel | None = None,
    opt_out: bool | None = None,
    order_id: str | None = None,
    content_ids: Sequence[str] | None = None,
    num_items: int | None = None,
    custom_data: Mapping[str, object] | None = None,
    default_country: str | None = None,
    now: datetime | None = None,
) -> ServerEvent:
    """Build a validated 'Purchase' event; ``value`` and ``currency`` are required.

    The currency always comes from the caller (never defaulted to USD) and is sent upper-case.
    """
    return build_event(
        "Purchase",
        user_data=user_data,
        event_id=event_id,
        event_time=event_time,
        action_source=action_source,
        event_source_url=event_source_url,
        referrer_url=referrer_url,
        messaging_channel=messaging_channel,
        opt_out=opt_out,
        money=(value, currency),
        standard={
            "order_id": order_id,
            "content_ids": list(content_ids) if content_ids else None,
            "num_items": num_items,
        },
        custom_data=custom_data,
        default_country=default_country,
        now=now,
    )
