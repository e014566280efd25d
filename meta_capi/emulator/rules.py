"""Meta's semantic rules for one server event, checked after the structure is valid.

Each rule raises the ``GraphError`` Meta documents (or was observed to send); the first
failing event rejects the whole request, as Meta does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from meta_capi.emulator.graph import (
    SUBCODE_CLICK_ID,
    SUBCODE_CUSTOMER_INFO,
    SUBCODE_MESSAGING_EVENT,
    SUBCODE_PURCHASE_VALUE,
    SUBCODE_TOO_OLD,
    GraphError,
    param_error,
    path_of,
)
from meta_capi.emulator.schema import check_event_structure

__all__ = ["MESSAGING_EVENT_NAMES", "check_event"]

MAX_AGE_SECONDS = 7 * 24 * 3600
MAX_AGE_PHYSICAL_STORE_SECONDS = 62 * 24 * 3600
MAX_FUTURE_SECONDS = 60  # [emulator] RudderStack's tolerance; Meta documents none
MESSAGING_EVENT_NAMES = frozenset(
    {
        "Purchase",
        "LeadSubmitted",
        "InitiateCheckout",
        "AddToCart",
        "ViewContent",
        "OrderCreated",
        "OrderShipped",
        "OrderDelivered",
        "OrderCanceled",
        "OrderReturned",
        "CartAbandoned",
        "QualifiedLead",
        "RatingProvided",
        "ReviewProvided",
    }
)
_MESSAGING_IDS = {
    "messenger": ("page_id", "page_scoped_user_id"),
    "whatsapp": ("whatsapp_business_account_id", "ctwa_clid"),
    "instagram": ("instagram_business_account_id", "ig_sid"),
}
# Baseline matching (since v13.0): these sets, or any subset, are not enough on their own.
_INSUFFICIENT = (
    frozenset({"ct", "country", "st", "zp", "ge", "client_user_agent"}),
    frozenset({"db", "client_user_agent"}),
    frozenset({"fn", "ge"}),
    frozenset({"ln", "ge"}),
)
_FBC = re.compile(r"^fb\.\d+\.\d{13}\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]{2}|\.[A-Za-z0-9_-]{8})?$")


def check_event(event: Mapping[str, object], index: int, now: float) -> None:
    """Raise the ``GraphError`` Meta would answer for this event, if any."""
    check_event_structure(event, index)
    for key in ("event_name", "event_time", "action_source", "user_data"):
        if key not in event:
            raise param_error(f"The parameter {path_of('data', index, key)} is required")
    _check_time(event, index, now)
    _check_action_source(event, index)
    user = event["user_data"]
    assert isinstance(user, Mapping)  # checked by check_event_structure
    fbc = user.get("fbc")
    if fbc is not None and not (isinstance(fbc, str) and _FBC.match(fbc)):
        raise GraphError(
            code=100,
            subcode=SUBCODE_CLICK_ID,
            message="Invalid parameter",
            title="Click ID Incorrectly Formatted",
            user_msg="The fbc parameter must be formatted as "
            "fb.{subdomain_index}.{creation_time_ms}.{fbclid}.",
        )
    if event["event_name"] == "Purchase":
        custom = event.get("custom_data")
        if not isinstance(custom, Mapping) or "value" not in custom or "currency" not in custom:
            raise GraphError(
                code=100,
                subcode=SUBCODE_PURCHASE_VALUE,
                message="Invalid parameter",
                title="Missing Value for Purchase Event",
                user_msg="A value and currency are required for Purchase events. "
                "Add custom_data.value and custom_data.currency.",
            )
    present = frozenset(key for key, value in user.items() if value not in (None, "", []))
    if any(present <= weak for weak in _INSUFFICIENT):
        raise GraphError(
            code=100,
            subcode=SUBCODE_CUSTOMER_INFO,
            message="Invalid parameter",
            title="Insufficient Customer Information Parameters",
            user_msg="The event does not contain enough customer information parameters. "
            "Send at least one of em, ph, external_id, client_ip_address with "
            "client_user_agent, fbc, fbp, or a name with more than gender.",
        )


def _check_time(event: Mapping[str, object], index: int, now: float) -> None:
    event_time = event["event_time"]
    assert isinstance(event_time, int)
    limit = (
        MAX_AGE_PHYSICAL_STORE_SECONDS
        if event.get("action_source") == "physical_store"
        else MAX_AGE_SECONDS
    )
    if event_time < now - limit:
        raise GraphError(
            code=100,
            subcode=SUBCODE_TOO_OLD,
            message="Invalid parameter",
            title="Event Timestamp Too Old",
            user_msg="The timestamp for this event is too far in the past. Events need to be "
            "sent from your server within 7 days of when they occurred. Enter a timestamp "
            "that has occurred within the last 7 days.",
        )
    if event_time > now + MAX_FUTURE_SECONDS:
        raise param_error(
            f"The parameter {path_of('data', index, 'event_time')} is in the future; "
            "send the time the event happened, in seconds"
        )


def _check_action_source(event: Mapping[str, object], index: int) -> None:
    source = event["action_source"]
    user = event["user_data"]
    assert isinstance(user, Mapping)
    if source == "website":
        if "event_source_url" not in event:
            raise param_error(
                f"The parameter {path_of('data', index, 'event_source_url')} is required "
                "for website events"
            )
        if "client_user_agent" not in user:
            raise param_error(
                f"The parameter {path_of('data', index, 'user_data', 'client_user_agent')} "
                "is required for website events"
            )
    elif source == "app":
        _check_app_data(event, index)
    elif source == "business_messaging":
        channel = event.get("messaging_channel")
        if not isinstance(channel, str):
            raise param_error(
                f"The parameter {path_of('data', index, 'messaging_channel')} is required "
                "for business_messaging events"
            )
        for key in _MESSAGING_IDS[channel]:
            if key not in user:
                raise param_error(
                    f"The parameter {path_of('data', index, 'user_data', key)} is required "
                    f"for {channel} messaging events"
                )
        if event["event_name"] not in MESSAGING_EVENT_NAMES:
            raise GraphError(
                code=100,
                subcode=SUBCODE_MESSAGING_EVENT,
                message="Invalid parameter",
                title="Messaging Event Invalid Event Type",
                user_msg=f"{event['event_name']} is not a supported event for business messaging.",
            )


def _check_app_data(event: Mapping[str, object], index: int) -> None:
    app = event.get("app_data")
    if not isinstance(app, Mapping):
        raise param_error(
            f"The parameter {path_of('data', index, 'app_data')} is required for app events"
        )
    for key in ("advertiser_tracking_enabled", "application_tracking_enabled", "extinfo"):
        if key not in app:
            raise param_error(
                f"The parameter {path_of('data', index, 'app_data', key)} is required"
            )
    extinfo = app["extinfo"]
    if not (
        isinstance(extinfo, list)
        and len(extinfo) == 16
        and all(isinstance(v, str) for v in extinfo)
        and extinfo[0] in {"a2", "i2"}
    ):
        raise param_error(
            f"The parameter {path_of('data', index, 'app_data', 'extinfo')} must be an "
            'array of 16 strings starting with "a2" or "i2"'
        )
