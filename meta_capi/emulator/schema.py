"""Structural checks of one server event: known keys at every level, value types, hashes.

Unknown keys are refused at every level except inside ``custom_data``, where Meta accepts
custom properties; the known ``custom_data`` keys are still type-checked.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

import pycountry

from meta_capi.emulator.graph import param_error, path_of

__all__ = ["ACTION_SOURCES", "HASHED_FIELDS", "USER_DATA_KEYS", "check_event_structure"]

ACTION_SOURCES = frozenset(
    {
        "email",
        "website",
        "app",
        "phone_call",
        "chat",
        "physical_store",
        "system_generated",
        "business_messaging",
        "other",
    }
)
HASHED_FIELDS = frozenset(
    {"em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country"}
    | {"f5first", "f5last", "fi", "dobd", "dobm", "doby"}
)
_ID_FIELDS = frozenset(
    {
        "fbc",
        "fbp",
        "subscription_id",
        "fb_login_id",
        "lead_id",
        "anon_id",
        "madid",
        "page_id",
        "page_scoped_user_id",
        "ctwa_clid",
        "ig_account_id",
        "ig_sid",
        "whatsapp_business_account_id",
        "instagram_business_account_id",
    }
)
USER_DATA_KEYS = HASHED_FIELDS | _ID_FIELDS | {"external_id", "client_ip_address"}
USER_DATA_KEYS |= {"client_user_agent"}
EVENT_KEYS = frozenset(
    {
        "event_name",
        "event_time",
        "event_id",
        "event_source_url",
        "action_source",
        "opt_out",
        "user_data",
        "custom_data",
        "app_data",
        "data_processing_options",
        "data_processing_options_country",
        "data_processing_options_state",
        "referrer_url",
        "customer_segmentation",
        "original_event_data",
        "attribution_data",
        "messaging_channel",
    }
)
_APP_DATA_KEYS = frozenset(
    {
        "advertiser_tracking_enabled",
        "application_tracking_enabled",
        "campaign_ids",
        "consider_views",
        "extinfo",
        "include_dwell_data",
        "include_video_data",
        "install_referrer",
        "installer_package",
        "receipt_data",
        "url_schemes",
        "windows_attribution_id",
    }
)
_ORIGINAL_KEYS = frozenset({"event_name", "event_time", "order_id", "event_id"})
_ATTRIBUTION_KEYS = frozenset(
    {
        "scope",
        "visit_time",
        "ad_id",
        "adset_id",
        "campaign_id",
        "attribution_share",
        "attribution_model",
        "attr_window",
        "attribution_value",
    }
)
_CONTENT_KEYS = frozenset(
    {"id", "quantity", "item_price", "delivery_category", "title", "description", "brand"}
    | {"category"}
)
_SEGMENTS = frozenset(
    f"{kind}_customer_to_{scope}"
    for kind in ("new", "existing")
    for scope in ("business", "business_line", "product_area", "medium")
) | {"customer_in_loyalty_program"}
# Plain SHA-256 hex, optionally with the Parameter Builder's ".<appendix>" (Meta accepts it).
_HASH = re.compile(r"^[0-9a-f]{64}(\.[A-Za-z0-9_-]{2}|\.[A-Za-z0-9_-]{8})?$")

Path = tuple[str | int, ...]


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _unknown_keys(obj: Mapping[str, object], allowed: frozenset[str], path: Path) -> None:
    for key in obj:
        if key not in allowed:
            raise param_error(f'Unexpected key "{key}" on param {path_of(*path)}')


def _object(value: object, path: Path) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise param_error(f"The parameter {path_of(*path)} must be a JSON object")
    return value


def _expect(ok: bool, path: Path, what: str) -> None:
    if not ok:
        raise param_error(f"The parameter {path_of(*path)} must be {what}")


def check_event_structure(event: Mapping[str, object], index: int) -> None:
    """Raise a 100/2804019 ``GraphError`` naming the first structural problem."""
    base: Path = ("data", index)
    _unknown_keys(event, EVENT_KEYS, base)
    for key in ("event_name", "event_id", "event_source_url", "referrer_url"):
        if key in event:
            _expect(isinstance(event[key], str) and bool(event[key]), (*base, key), "a string")
    if "event_time" in event:
        _expect(
            isinstance(event["event_time"], int) and not isinstance(event["event_time"], bool),
            (*base, "event_time"),
            "an integer Unix time in seconds",
        )
    if "action_source" in event:
        _expect(
            event["action_source"] in ACTION_SOURCES,
            (*base, "action_source"),
            "one of " + ", ".join(sorted(ACTION_SOURCES)),
        )
    if "opt_out" in event:
        _expect(isinstance(event["opt_out"], bool), (*base, "opt_out"), "a boolean")
    if "customer_segmentation" in event:
        _expect(
            event["customer_segmentation"] in _SEGMENTS,
            (*base, "customer_segmentation"),
            "a customer segmentation value",
        )
    if "messaging_channel" in event:
        _expect(
            event["messaging_channel"] in {"whatsapp", "messenger", "instagram"},
            (*base, "messaging_channel"),
            "whatsapp, messenger or instagram",
        )
    _check_dpo(event, base)
    if "user_data" in event:
        _check_user_data(_object(event["user_data"], (*base, "user_data")), (*base, "user_data"))
    if "custom_data" in event:
        _check_custom_data(
            _object(event["custom_data"], (*base, "custom_data")), (*base, "custom_data")
        )
    for key, allowed in (
        ("app_data", _APP_DATA_KEYS),
        ("original_event_data", _ORIGINAL_KEYS),
        ("attribution_data", _ATTRIBUTION_KEYS),
    ):
        if key in event:
            _unknown_keys(_object(event[key], (*base, key)), allowed, (*base, key))


def _check_dpo(event: Mapping[str, object], base: Path) -> None:
    options = event.get("data_processing_options")
    if options is not None:
        _expect(
            isinstance(options, list) and all(o == "LDU" for o in options),
            (*base, "data_processing_options"),
            '[] or ["LDU"]',
        )
        if options and "data_processing_options_country" not in event:
            raise param_error(
                f"The parameter {path_of(*base, 'data_processing_options_country')} is required"
            )
    for key in ("data_processing_options_country", "data_processing_options_state"):
        if key in event:
            value = event[key]
            _expect(
                isinstance(value, int) and not isinstance(value, bool), (*base, key), "an integer"
            )


def _check_user_data(user: Mapping[str, object], path: Path) -> None:
    _unknown_keys(user, USER_DATA_KEYS, path)
    for key, value in user.items():
        values = value if isinstance(value, list) else [value]
        if key in HASHED_FIELDS or key == "external_id":
            _expect(
                bool(values) and all(isinstance(v, str) and v for v in values),
                (*path, key),
                "a string or a list of strings",
            )
        if key in HASHED_FIELDS:
            for item in values:
                if not _HASH.match(str(item)):
                    raise param_error(
                        f"The parameter {path_of(*path, key)} must be a SHA-256 hash "
                        "(64 lowercase hex characters): unhashed customer information "
                        "is not accepted"
                    )
        elif key == "client_ip_address":
            _expect(isinstance(value, str) and _is_ip(value), (*path, key), "an IP address")
        elif key == "client_user_agent":
            _expect(isinstance(value, str) and bool(value), (*path, key), "a string")
        elif key in _ID_FIELDS:
            _expect(
                all(
                    isinstance(v, str | int) and not isinstance(v, bool) and v != "" for v in values
                )
                and bool(values),
                (*path, key),
                "a string",
            )


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _check_custom_data(custom: Mapping[str, object], path: Path) -> None:
    for key in ("value", "predicted_ltv", "net_revenue"):
        if key in custom:
            _expect(_number(custom[key]), (*path, key), "a number")
    if "currency" in custom:
        currency = custom["currency"]
        _expect(
            isinstance(currency, str)
            and pycountry.currencies.get(alpha_3=currency.upper()) is not None,
            (*path, "currency"),
            "an ISO 4217 currency code",
        )
    if "num_items" in custom:
        _expect(isinstance(custom["num_items"], int), (*path, "num_items"), "an integer")
    if "content_ids" in custom:
        ids = custom["content_ids"]
        _expect(
            isinstance(ids, list) and all(isinstance(i, str | int) for i in ids),
            (*path, "content_ids"),
            "a list of strings",
        )
    if "content_type" in custom:
        _expect(
            custom["content_type"] in {"product", "product_group"},
            (*path, "content_type"),
            "product or product_group",
        )
    if "contents" in custom:
        contents = custom["contents"]
        _expect(isinstance(contents, list), (*path, "contents"), "a list")
        assert isinstance(contents, list)
        for position, item in enumerate(contents):
            entry = _object(item, (*path, "contents", position))
            _unknown_keys(entry, _CONTENT_KEYS, (*path, "contents", position))
            if "id" not in entry:
                raise param_error(
                    f"The parameter {path_of(*path, 'contents', position, 'id')} is required"
                )
