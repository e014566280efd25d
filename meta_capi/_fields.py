"""Meta's ``user_data`` keys, grouped by how they must be treated (reference §3)."""

from __future__ import annotations

from typing import Final

# Customer-information keys Meta requires hashed (SHA-256, lowercase hex) after normalising.
HASHED_KEYS: Final = frozenset(
    {"em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id"}
)

# Hashed keys this library emits as lists (a person often has several of each).
LIST_KEYS: Final = frozenset({"em", "ph", "external_id"})

# Keys Meta says must never be hashed; they are sent exactly as given.
NEVER_HASH_KEYS: Final = frozenset(
    {
        "client_ip_address",
        "client_user_agent",
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

USER_DATA_KEYS: Final = HASHED_KEYS | NEVER_HASH_KEYS
