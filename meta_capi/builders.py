"""Builders for the standard events this project sends; each returns a validated ServerEvent.

One builder per event the five sources emit (Lead, AddToCart, InitiateCheckout, Purchase).
Every builder hashes ``user_data`` (raw or already hashed values are both accepted), picks
a sensible ``action_source`` and runs ``validate_server_event`` so an invalid event never
reaches a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

from meta_capi._assemble import EventOptions, Money, build_event, optional_money
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
    value: Money | None = None,
    currency: str | None = None,
    **options: Unpack[EventOptions],
) -> ServerEvent:
    """Build and validate any named event (e.g. 'LeadSubmitted' for business messaging).

    Options: ``event_time`` (default now), ``action_source``, ``event_source_url``,
    ``referrer_url``, ``messaging_channel``, ``opt_out``, ``custom_data``,
    ``default_country`` (for national phone numbers) and ``now`` (a timezone-aware clock).
    ``action_source`` defaults to 'website' when ``event_source_url`` and a
    ``client_user_agent`` are given, to 'business_messaging' when ``messaging_channel`` is,
    else to 'other'.

    Raises:
        MetaEventValidationError: the event breaks a rule (see ``validate_server_event``).
    """
    return build_event(
        event_name,
        user_data=user_data,
        event_id=event_id,
        money=optional_money(value, currency),
        standard={},
        **options,
    )


def create_lead_event(
    *,
    user_data: RawUserData,
    event_id: str,
    value: Money | None = None,
    currency: str | None = None,
    content_name: str | None = None,
    **options: Unpack[EventOptions],
) -> ServerEvent:
    """Build a validated 'Lead' event; options as ``create_event``.

    Meta's business-messaging list has no 'Lead' (it has 'LeadSubmitted'), so Lead with
    ``action_source='business_messaging'`` is refused (subcode 2804066).
    """
    return build_event(
        "Lead",
        user_data=user_data,
        event_id=event_id,
        money=optional_money(value, currency),
        standard={"content_name": content_name},
        **options,
    )


def create_add_to_cart_event(
    *,
    user_data: RawUserData,
    event_id: str,
    value: Money | None = None,
    currency: str | None = None,
    content_ids: Sequence[str] | None = None,
    **options: Unpack[EventOptions],
) -> ServerEvent:
    """Build a validated 'AddToCart' event; options as ``create_event``."""
    return build_event(
        "AddToCart",
        user_data=user_data,
        event_id=event_id,
        money=optional_money(value, currency),
        standard={"content_ids": list(content_ids) if content_ids else None},
        **options,
    )


def create_initiate_checkout_event(
    *,
    user_data: RawUserData,
    event_id: str,
    value: Money | None = None,
    currency: str | None = None,
    content_ids: Sequence[str] | None = None,
    num_items: int | None = None,
    **options: Unpack[EventOptions],
) -> ServerEvent:
    """Build a validated 'InitiateCheckout' event; options as ``create_event``."""
    standard = {"content_ids": list(content_ids) if content_ids else None, "num_items": num_items}
    return build_event(
        "InitiateCheckout",
        user_data=user_data,
        event_id=event_id,
        money=optional_money(value, currency),
        standard=standard,
        **options,
    )


def create_purchase_event(
    *,
    user_data: RawUserData,
    event_id: str,
    value: Money,
    currency: str,
    order_id: str | None = None,
    content_ids: Sequence[str] | None = None,
    num_items: int | None = None,
    **options: Unpack[EventOptions],
) -> ServerEvent:
    """Build a validated 'Purchase' event; ``value`` and ``currency`` are required.

    The currency always comes from the caller (never defaulted to USD) and is sent upper-case.
    """
    standard = {
        "order_id": order_id,
        "content_ids": list(content_ids) if content_ids else None,
        "num_items": num_items,
    }
    return build_event(
        "Purchase",
        user_data=user_data,
        event_id=event_id,
        money=(value, currency),
        standard=standard,
        **options,
    )
