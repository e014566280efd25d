"""Events from bodies of the current schema without a second pydantic pass.

A body written with the current schema is read by a compiled reader that also applies the
event model's remaining rules in the same pass (stripped, non-empty, bounded, NUL-free text;
known names; money and counts in range; canonical UUIDs) and builds the models without
validating them again (``TrustRules`` in ``compiled.py``). Whenever a record breaks, or only
might break, a rule, that reader raises and the codec validates the plain record with
pydantic, so the event or the error is always the one ``ConversionEvent.model_validate``
gives (``tests/unit/test_avro_codec.py`` compares both on random and mutated bodies).
Validation stays whole at the edges: webhook bodies, ``capi publish`` and records written with
other writer schemas.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final, get_args

from capi_stream.avro.compiled import TrustRules
from capi_stream.event import (
    ActionSource,
    Attribution,
    ConversionEvent,
    CustomData,
    MessagingChannel,
    Source,
    SourceIds,
    UserIdentity,
)

__all__ = ["EVENT_RULES", "MODELS"]

_SHORT, _LONG = 512, 4096  # ShortText, LongText
_MONEY_LIMIT: Final = Decimal(10**16)  # max_digits 20 with the schema's 4 decimals
_INT_MAX: Final = 2**31 - 1

MODELS: Final[dict[str, type]] = {
    "ConversionEvent": ConversionEvent,
    "UserIdentity": UserIdentity,
    "SourceIds": SourceIds,
    "Attribution": Attribution,
    "CustomData": CustomData,
}


def _money(value: Decimal) -> bool:
    # The reader's decimal has the schema's 4 decimals unless it had more than 20 digits and
    # was rounded; those are >= 10**16 and fail the range, so pydantic decides them.
    return 0 <= value < _MONEY_LIMIT


def _currency(value: str) -> bool:
    # The model upper-cases, then wants ^[A-Z]{3}$: anything not already so goes to pydantic.
    return len(value) == 3 and value.isascii() and value.isalpha() and value.isupper()


def _count(value: int) -> bool:
    return 0 <= value <= _INT_MAX


def _texts(record: str, names: Any, limit: int) -> dict[str, int]:
    return {f"{record}.{name}": limit for name in names}


_EVENT_TEXT = {
    "event_id": 255,
    "source_event_id": _SHORT,
    "delivery_id": _SHORT,
    "event_name": 100,
    "event_source_url": _LONG,
    "client_user_agent": _LONG,
    "client_ip_address": _SHORT,
}

EVENT_RULES: Final = TrustRules(
    models=MODELS,
    text_limits={
        **{f"ConversionEvent.{name}": limit for name, limit in _EVENT_TEXT.items()},
        **_texts("UserIdentity", UserIdentity.model_fields, _SHORT),
        **_texts("SourceIds", SourceIds.model_fields, _SHORT),
        **_texts("Attribution", set(Attribution.model_fields) - {"click_time"}, _SHORT),
        "Attribution.landing_url": _LONG,
        **_texts("CustomData", ("order_id", "content_name", "content_category"), _SHORT),
        "CustomData.content_ids": _SHORT,
        "CustomData.extra{}": _SHORT,
        "CustomData.extra": _LONG,
    },
    choices={
        "ConversionEvent.source": frozenset(get_args(Source)),
        "ConversionEvent.action_source": frozenset(get_args(ActionSource)),
        "ConversionEvent.messaging_channel": frozenset(get_args(MessagingChannel)),
    },
    sizes={
        "UserIdentity.emails": 10,
        "UserIdentity.phones": 10,
        "UserIdentity.external_ids": 10,
        "CustomData.content_ids": 100,
        "CustomData.extra": 50,
    },
    checks={
        "CustomData.value": _money,
        "CustomData.currency": _currency,
        "CustomData.num_items": _count,
    },
    interned=frozenset({"ConversionEvent.tenant_id"}),
)
