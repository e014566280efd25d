"""Meta's acceptance rules for one server event, checked before sending (reference §2-§4).

Meta rejects a whole batch when one event is invalid, so every rule it is known to enforce is
checked here; each failure carries Meta's error subcode for that rule where one is known.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Final, get_args

import pycountry

from capi_stream.errors import EventValidationError
from capi_stream.event import ActionSource, MessagingChannel
from meta_capi._fields import HASHED_KEYS, NEVER_HASH_KEYS
from meta_capi.server_event import ServerEvent

__all__ = [
    "BUSINESS_MESSAGING_EVENTS",
    "MAX_EVENT_AGE",
    "MAX_FUTURE_SKEW",
    "MetaEventValidationError",
    "is_expired",
    "validate_server_event",
]

SUBCODE_BAD_CLICK_ID: Final = 2804001
SUBCODE_TOO_OLD: Final = 2804003
SUBCODE_PURCHASE_VALUE: Final = 2804009
SUBCODE_PARAMETER_ERROR: Final = 2804019
SUBCODE_INSUFFICIENT_CUSTOMER_INFO: Final = 2804050
SUBCODE_MESSAGING_EVENT_TYPE: Final = 2804066

MAX_EVENT_AGE: Final = timedelta(days=7)
# Meta documents no future tolerance; one minute (as RudderStack) absorbs clock skew.
MAX_FUTURE_SKEW: Final = timedelta(minutes=1)
_MAX_AGE_SECONDS: Final = MAX_EVENT_AGE.total_seconds()
_MAX_SKEW_SECONDS: Final = MAX_FUTURE_SKEW.total_seconds()

ACTION_SOURCES: Final = frozenset(get_args(ActionSource))
MESSAGING_CHANNELS: Final = frozenset(get_args(MessagingChannel))

BUSINESS_MESSAGING_EVENTS: Final = frozenset(
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

# Per channel: each inner tuple is alternatives, every tuple must be satisfied. Instagram's
# account id is 'instagram_business_account_id' in the guide, 'ig_account_id' in the table.
_CHANNEL_IDS: Final[Mapping[str, tuple[tuple[str, ...], ...]]] = {
    "messenger": (("page_id",), ("page_scoped_user_id",)),
    "whatsapp": (("whatsapp_business_account_id",), ("ctwa_clid",)),
    "instagram": (("instagram_business_account_id", "ig_account_id"), ("ig_sid",)),
}

# An event whose customer information is only a subset of one of these is rejected (v13+).
_INSUFFICIENT_SETS: Final = (
    frozenset({"ct", "country", "st", "zp", "ge", "client_user_agent"}),
    frozenset({"db", "client_user_agent"}),
    frozenset({"fn", "ge"}),
    frozenset({"ln", "ge"}),
)

# A key outside all of them is enough: the common case, decided with one subset check.
_INSUFFICIENT_KEYS: Final = frozenset().union(*_INSUFFICIENT_SETS)

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class MetaEventValidationError(EventValidationError):
    """A server event breaks one of Meta's rules; ``subcode`` is Meta's subcode for it."""

    def __init__(
        self, message: str, *, field: str | None = None, subcode: int | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.subcode = subcode


def _age_seconds(event_time: float | datetime, now: datetime) -> float:
    # Seconds, not datetimes: a millisecond timestamp would overflow datetime's year range.
    stamp = event_time.timestamp() if isinstance(event_time, datetime) else event_time
    return now.timestamp() - stamp


def is_expired(event_time: float | datetime, now: datetime | None = None) -> bool:
    """True when Meta would refuse the event as older than ``MAX_EVENT_AGE`` (7 days).

    ``event_time`` is Unix seconds or an aware datetime; the consumer uses this to record an
    event as expired instead of sending a batch Meta would refuse whole (subcode 2804003).
    """
    return _age_seconds(event_time, now or datetime.now(UTC)) > _MAX_AGE_SECONDS


def _fail(message: str, field: str, subcode: int | None = None) -> MetaEventValidationError:
    return MetaEventValidationError(message, field=field, subcode=subcode)


def _check_time(event: ServerEvent, now: datetime) -> None:
    if isinstance(event.event_time, bool) or not isinstance(event.event_time, int):
        raise _fail("event_time must be an int of Unix seconds", "event_time")
    age = _age_seconds(event.event_time, now)
    if age > _MAX_AGE_SECONDS:
        raise _fail("event_time is more than 7 days old", "event_time", SUBCODE_TOO_OLD)
    if -age > _MAX_SKEW_SECONDS:
        raise _fail("event_time is more than 1 minute in the future", "event_time")


def _check_source(event: ServerEvent) -> None:
    user = event.user_data
    if event.action_source not in ACTION_SOURCES:
        raise _fail(f"unknown action_source {event.action_source!r}", "action_source")
    if event.action_source == "website":
        if not event.event_source_url:
            raise _fail(
                "website events need event_source_url", "event_source_url", SUBCODE_PARAMETER_ERROR
            )
        if not user.get("client_user_agent"):
            raise _fail(
                "website events need user_data.client_user_agent",
                "user_data.client_user_agent",
                SUBCODE_PARAMETER_ERROR,
            )
    if event.action_source == "app":
        raise _fail("app events need app_data, which this library does not build", "app_data")
    if event.action_source == "business_messaging":
        _check_messaging(event)


def _check_messaging(event: ServerEvent) -> None:
    if event.event_name not in BUSINESS_MESSAGING_EVENTS:
        raise _fail(
            f"{event.event_name!r} is not a business-messaging event (Lead -> LeadSubmitted); "
            "use one of " + ", ".join(sorted(BUSINESS_MESSAGING_EVENTS)),
            "event_name",
            SUBCODE_MESSAGING_EVENT_TYPE,
        )
    channel = event.messaging_channel
    if channel is None or channel not in MESSAGING_CHANNELS:
        raise _fail(
            "business_messaging events need messaging_channel (whatsapp, messenger, instagram)",
            "messaging_channel",
            SUBCODE_PARAMETER_ERROR,
        )
    for alternatives in _CHANNEL_IDS[channel]:
        if not any(event.user_data.get(key) for key in alternatives):
            raise _fail(
                f"{channel} events need user_data.{' or '.join(alternatives)}",
                f"user_data.{alternatives[0]}",
                SUBCODE_PARAMETER_ERROR,
            )


def _check_user_data(user: Mapping[str, str | list[str]], *, hashed_here: bool = False) -> None:
    # build_user_data's output has only known keys, non-empty plain values and its own
    # digests: only the insufficient-information rule is left to check.
    for key, value in () if hashed_here else user.items():
        field = f"user_data.{key}"
        if key in NEVER_HASH_KEYS:
            if not isinstance(value, str) or not value:
                raise _fail(f"{field} must be a non-empty string", field)
        elif key in HASHED_KEYS:
            values = value if isinstance(value, list) else [value]
            if not values or not all(
                isinstance(v, str) and _SHA256_HEX.fullmatch(v) for v in values
            ):
                raise _fail(f"{field} must be SHA-256 as 64 lowercase hex", field)
        else:
            raise _fail(f"unknown user_data key {key!r}", field, SUBCODE_PARAMETER_ERROR)
    present = user.keys()
    if present <= _INSUFFICIENT_KEYS and any(present <= minimal for minimal in _INSUFFICIENT_SETS):
        raise _fail(
            "not enough customer information: add em, ph, external_id, fbc, fbp or IP + user "
            "agent (Meta refuses geo, gender or birth date alone)",
            "user_data",
            SUBCODE_INSUFFICIENT_CUSTOMER_INFO,
        )


@cache
def _currencies() -> frozenset[str]:
    # A set lookup, not pycountry's per-call index search: this runs once per event.
    return frozenset(str(c.alpha_3).upper() for c in pycountry.currencies)


def _check_money(event: ServerEvent) -> None:
    value = event.custom_data.get("value")
    currency = event.custom_data.get("currency")
    if event.event_name == "Purchase" and value is None:
        raise _fail(
            "Purchase events need custom_data.value", "custom_data.value", SUBCODE_PURCHASE_VALUE
        )
    if value is not None:
        if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
            raise _fail("custom_data.value must be a finite Decimal >= 0", "custom_data.value")
        if currency is None:
            # Ours, not Meta's (it requires currency on Purchase only): an amount without a
            # currency cannot be optimised on and is always a caller bug.
            raise _fail("custom_data.value needs custom_data.currency", "custom_data.currency")
    if currency is not None and (
        not isinstance(currency, str) or currency.upper() not in _currencies()
    ):
        raise _fail(f"unknown ISO 4217 currency {currency!r}", "custom_data.currency")


def _check_ldu(event: ServerEvent) -> None:
    options = event.data_processing_options
    if options is None:
        return
    if set(options) - {"LDU"}:
        raise _fail("data_processing_options may hold only 'LDU'", "data_processing_options")
    if "LDU" in options and event.data_processing_options_country is None:
        raise _fail(
            "LDU needs data_processing_options_country (1 = USA, 0 = geolocate)",
            "data_processing_options_country",
        )
    if (
        "LDU" in options
        and event.data_processing_options_state is None
        and not event.user_data.get("client_ip_address")
    ):
        raise _fail(
            "LDU without client_ip_address needs data_processing_options_state",
            "data_processing_options_state",
        )


def validate_server_event(
    event: ServerEvent, *, now: datetime | None = None, hashed_here: bool = False
) -> None:
    """Check ``event`` against every rule Meta is known to enforce; return None if it passes.

    ``now`` (timezone-aware) fixes the clock for the 7-day / 1-minute event_time window.
    ``hashed_here`` says ``user_data`` came from ``build_user_data`` (known keys, non-empty
    plain values, digests it made or checked), so only its insufficient-information rule is
    checked, not each key and hash again.

    Raises:
        MetaEventValidationError: the first rule broken, with Meta's subcode where known.
    """
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not event.event_name or not event.event_name.strip():
        raise _fail("event_name is empty", "event_name", SUBCODE_PARAMETER_ERROR)
    _check_time(event, now or datetime.now(UTC))
    _check_source(event)
    _check_user_data(event.user_data, hashed_here=hashed_here)
    _check_money(event)
    _check_ldu(event)
