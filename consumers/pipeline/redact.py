"""Retry and dead-letter topics carry hashed customer data only.

Raw PII exists only on the main topic. Before an event is forwarded, every customer field
is replaced by the SHA-256 Meta would receive (the same ``build_user_data`` that builds the
request), so the next hop hashes nothing new: 64-hex values pass through unchanged. Click
and browser ids (``fbc``, ``fbp``, ``ctwa_clid``) are not hashed, as Meta requires.
"""

from __future__ import annotations

from capi_stream.event import ConversionEvent
from meta_capi.hashing import build_user_data

# UserIdentity field -> Meta user_data key; the first three are lists on both sides.
_LIST_FIELDS = {"emails": "em", "phones": "ph", "external_ids": "external_id"}
_SINGLE_FIELDS = {
    "first_name": "fn",
    "last_name": "ln",
    "gender": "ge",
    "date_of_birth": "db",
    "city": "ct",
    "state": "st",
    "zip": "zp",
    "country": "country",
}


def hash_identity(event: ConversionEvent, default_country: str | None) -> ConversionEvent:
    """A copy of ``event`` whose customer fields are SHA-256 hex (unusable values dropped)."""
    user = event.user
    raw: dict[str, str | list[str] | None] = {}
    for name, key in _LIST_FIELDS.items():
        raw[key] = list(getattr(user, name))
    for name, key in _SINGLE_FIELDS.items():
        raw[key] = getattr(user, name)
    hashed = build_user_data(raw, default_country=default_country)
    update: dict[str, object] = {}
    for name, key in _LIST_FIELDS.items():
        value = hashed.get(key, [])
        update[name] = list(value) if isinstance(value, list) else [value]
    for name, key in _SINGLE_FIELDS.items():
        single = hashed.get(key)
        update[name] = single if isinstance(single, str) else None
    return event.model_copy(update={"user": user.model_copy(update=update)})
