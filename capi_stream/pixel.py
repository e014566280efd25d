"""The event id a thank-you page can reproduce: one page key per source, no secret involved.

Every webhook event's ``event_id`` is ``build_event_id(tenant, source, source_event_id)``, a
UUIDv5 (``capi_stream.event``). Meta counts a browser pixel event and a server event once
only when both carry the same ``event_name`` and ``event_id``, so the page must be able to
derive the ``source_event_id`` from something it holds. This table is that derivation; the
JavaScript helper (``producers/static/capi-pixel.js``) holds the same table, and a test
computes every source's id both ways.

=============  ======================  ===============================  ====================
source         event_name              page key                          source_event_id
=============  ======================  ===============================  ====================
stripe         Purchase                Checkout Session id (``cs_...``,  the key
                                       ``{CHECKOUT_SESSION_ID}`` in the
                                       success URL) or PaymentIntent id
                                       (``payment_intent`` in the
                                       Payment Element's return URL)
denefits       Purchase                contract code                     ``{key}:created``
perspective    InitiateCheckout        ``{funnelId}:{contact id}`` or    ``{key}:converted``
                                       ``{funnelId}:email-<hash>``
ghl            AddToCart               appointment id                    the key
chatbot        Lead                    ManyChat subscriber id            ``{key}:qualified``
=============  ======================  ===============================  ====================

The namespace UUID is public by design: the id only has to be stable and shared, not
secret (Meta treats it as an opaque string).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Any, Final

from capi_stream.event import EVENT_ID_NAMESPACE, Source, build_event_id

__all__ = [
    "PIXEL_PROVIDER",
    "PIXEL_SCHEMES",
    "PixelKeyError",
    "PixelScheme",
    "allowed_origins",
    "build_pixel_event_id",
    "build_source_event_id",
    "perspective_email_person",
    "scheme_for",
]

MAX_KEY_LENGTH: Final = 255
# Printable ASCII without spaces: every documented key (Stripe, GHL, ManyChat, Denefits ids,
# Perspective's "funnel:person") fits, and nothing else reaches a log line or the DB.
_KEY_PATTERN: Final = re.compile(r"^[\x21-\x7e]{1,255}$")


class PixelKeyError(ValueError):
    """The source has no page-reproducible id, or the key is not a plausible business key."""


@dataclass(frozen=True, slots=True)
class PixelScheme:
    """How one source's page key becomes the ``source_event_id`` the adapter builds."""

    source: Source
    event_name: str
    suffix: str  # appended to the page key, exactly as the adapter does
    key_hint: str  # what the page passes, for the CLI and error messages
    # A key only the buyer's browser holds (Stripe's long random ids) may also unlock the
    # contact's hashed external_id; a guessable key (a numeric subscriber id) never does.
    key_is_capability: bool = False


PIXEL_SCHEMES: Final[dict[str, PixelScheme]] = {
    scheme.source: scheme
    for scheme in (
        PixelScheme(
            "stripe",
            "Purchase",
            "",
            "Checkout Session id (cs_...) or PaymentIntent id (pi_...)",
            key_is_capability=True,
        ),
        PixelScheme("denefits", "Purchase", ":created", "Denefits contract code"),
        PixelScheme(
            "perspective",
            "InitiateCheckout",
            ":converted",
            "{funnelId}:{contact id} or {funnelId}:email-<sha256 of the email, 32 hex>",
        ),
        PixelScheme("ghl", "AddToCart", "", "GoHighLevel appointment id"),
        PixelScheme("chatbot", "Lead", ":qualified", "ManyChat subscriber id"),
    )
}


def scheme_for(source: str) -> PixelScheme:
    """The scheme of ``source``.

    Raises:
        PixelKeyError: the source has no page-reproducible id (``api`` events carry the
            producing service's own business key).
    """
    scheme = PIXEL_SCHEMES.get(source)
    if scheme is None:
        raise PixelKeyError(f"source {source!r} has no page-reproducible event id")
    return scheme


def build_source_event_id(source: str, key: str) -> str:
    """The ``source_event_id`` the source's adapter builds for this page key.

    Raises:
        PixelKeyError: unknown source, or a key that is empty, too long or not printable.
    """
    scheme = scheme_for(source)
    key = key.strip()
    if not _KEY_PATTERN.match(key):
        raise PixelKeyError("key must be 1-255 printable characters without spaces")
    return key + scheme.suffix


def build_pixel_event_id(tenant_id: uuid.UUID | str, source: str, key: str) -> str:
    """The ``event_id`` the server sends for this tenant, source and page key.

    Raises:
        PixelKeyError: see :func:`build_source_event_id`.
        ValueError: ``tenant_id`` is not a UUID.
    """
    tenant = tenant_id if isinstance(tenant_id, uuid.UUID) else uuid.UUID(tenant_id)
    return build_event_id(tenant, source, build_source_event_id(source, key))


def perspective_email_person(email: str) -> str:
    """The person part of a Perspective key when the page knows only the email typed."""
    return f"email-{hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]}"


NAMESPACE: Final = str(EVENT_ID_NAMESPACE)
# tenant_integrations provider holding {"allowed_origins": [...]} (``capi pixel-origins``).
PIXEL_PROVIDER: Final = "pixel"


def allowed_origins(credentials: Any) -> frozenset[str]:
    """The tenant's allowed page origins, normalised (lower-case, no trailing slash)."""
    raw = credentials.get("allowed_origins") if isinstance(credentials, dict) else None
    if not isinstance(raw, list):
        return frozenset()
    return frozenset(o.strip().rstrip("/").lower() for o in raw if isinstance(o, str) and o)
