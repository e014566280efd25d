"""Perspective funnels (form submitted, "New Lead" trigger) -> ``InitiateCheckout``.

Credentials (``tenant_integrations.credentials`` for provider ``perspective``)::

    {"secret": "<token>", "previous_secret": "<old token, during rotation>"}

Perspective signs nothing; the webhook URL's request must carry ``X-Capi-Secret: <token>``
or ``Authorization: Bearer <token>``.

Accepted bodies (optionally in a one-element array): the documented ``{id, funnelName,
meta: {convertedAt, converted, ...}}`` and the observed ``{funnelId, profile: {email:
{value}}, values: {email, ps_converted_at, utm_*, fbclid, ...}, meta}``. A delivery whose
``meta.converted`` is ``false`` is ignored.

One conversion per contact per funnel: ``f"{funnelId or funnelName}:{contact id}:converted"``;
without a contact id the person part is ``email-<sha256 of the lower-cased email>`` (or
``phone-<sha256>``), so no raw PII sits in the key. ``action_source`` is ``website`` only
when hidden fields supply both the page URL and the user agent, else ``other``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from capi_stream.event import ConversionEvent, Source
from producers.adapters import signatures
from producers.adapters.base import (
    UNPROCESSABLE,
    Ignored,
    PayloadError,
    WebhookRequest,
    build_event,
    business_time,
    first_text,
    load_object,
    obj,
    parse_time,
    split_name,
    text,
    unique,
)

ATTRIBUTION_KEYS = {
    "fbclid": ("fbclid",),
    "fbc": ("fbc", "_fbc"),
    "fbp": ("fbp", "_fbp"),
    "ad_id": ("ad_id", "AD_ID", "adid", "adId"),
    "utm_source": ("utm_source",),
    "utm_medium": ("utm_medium",),
    "utm_campaign": ("utm_campaign",),
    "utm_content": ("utm_content",),
    "utm_term": ("utm_term",),
}
URL_KEYS = ("page_url", "event_source_url", "url", "landing_url", "funnel_url")
USER_AGENT_KEYS = ("client_user_agent", "user_agent", "userAgent")
IP_KEYS = ("client_ip_address", "ip", "ip_address")


def _hashed(kind: str, value: str) -> str:
    return f"{kind}-{hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]}"


class PerspectiveAdapter(signatures.SharedSecretVerifier):
    """Perspective form submission -> ``InitiateCheckout`` (``website`` or ``other``)."""

    source: Source = "perspective"

    def parse(self, request: WebhookRequest) -> ConversionEvent | Ignored:
        """Map one funnel conversion to ``InitiateCheckout``."""
        payload = load_object(request.body)
        meta, values = obj(payload.get("meta")), obj(payload.get("values"))
        profile = obj(payload.get("profile"))

        def field(*names: str) -> str | None:
            for name in names:
                entry = profile.get(name)
                found = first_text(obj(entry).get("value"), entry, values.get(name))
                if found is not None:
                    return found
            return None

        converted_times = (
            meta.get("convertedAt"),
            values.get("ps_converted_at"),
            meta.get("ps_converted_at"),
        )
        if meta.get("converted") is False and not any(map(parse_time, converted_times)):
            return Ignored("perspective contact has not converted")
        funnel = first_text(payload.get("funnelId"), payload.get("funnelName"))
        if funnel is None:
            raise PayloadError("missing funnelId", status_code=UNPROCESSABLE)
        email, phone = field("email"), field("phone", "phoneNumber")
        contact_id = first_text(payload.get("id"), payload.get("contactId"))
        if contact_id is not None:
            person = contact_id
        elif email is not None:
            person = _hashed("email", email)
        elif phone is not None:
            person = _hashed("phone", "".join(ch for ch in phone if ch.isdigit()) or phone)
        else:
            raise PayloadError("missing identity", status_code=UNPROCESSABLE)

        def hidden(*names: str) -> str | None:
            return first_text(*(values.get(n) for n in names), *(meta.get(n) for n in names))

        attribution: dict[str, Any] = {f: hidden(*keys) for f, keys in ATTRIBUTION_KEYS.items()}
        if attribution["fbclid"] is not None:
            attribution["click_time"] = parse_time(
                first_text(meta.get("createdAt"), meta.get("ps_first_seen_at"))
            )
        url, user_agent = hidden(*URL_KEYS), hidden(*USER_AGENT_KEYS)
        website = url is not None and user_agent is not None
        first, last = split_name(field("name", "fullName"))
        return build_event(
            request,
            self.source,
            f"{funnel}:{person}:converted",
            {
                "event_name": "InitiateCheckout",
                "event_time": business_time(request.received_at, *converted_times),
                "action_source": "website" if website else "other",
                "event_source_url": url if website else None,
                "client_user_agent": user_agent if website else None,
                "client_ip_address": hidden(*IP_KEYS),
                "user": {
                    "emails": unique([email]),
                    "phones": unique([phone]),
                    "first_name": field("firstName", "first_name") or first,
                    "last_name": field("lastName", "last_name") or last,
                },
                "source_ids": {"perspective_contact_id": contact_id},
                "attribution": {**attribution, "landing_url": url},
                "custom_data": {"content_name": text(payload.get("funnelName"))},
            },
        )
