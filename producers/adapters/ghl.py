"""GoHighLevel (appointment booked) -> ``AddToCart``.

Credentials (``tenant_integrations.credentials`` for provider ``ghl``)::

    {"public_key_ed25519": "<PEM, or base64 raw/DER key>",   # marketplace, x-ghl-signature
     "public_key_rsa": "<PEM>",                             # marketplace, x-wh-signature
     "workflow_secret": "<token>",                          # workflow webhooks
     "previous_workflow_secret": "<old token>"}             # optional, during rotation

Marketplace-app webhooks are signed: ``x-ghl-signature`` (Ed25519, preferred) or the legacy
``x-wh-signature`` (RSA-SHA256), both base64; the body's ``timestamp`` must lie within five
minutes of receipt and its ``webhookId`` is the delivery id (the app rejects repeats).
Workflow webhooks are unsigned: their Custom Webhook action must send ``X-Capi-Secret``
(or ``Authorization: Bearer``) equal to ``workflow_secret``.

Mapping: the appointment id (native ``appointment.id``, workflow ``calendar.appointmentId``)
is the key, else ``f"{contact_id}:{opportunity_id}:booked"``. ``event_time`` is when the
booking was made (``dateAdded``), never the meeting's start time. Cancelled, no-show,
invalid and deleted appointments, payment or no-show pipeline stages, and non-booking
events (contacts, invoices, orders...) are ignored. Appointment events carry no PII: the
contact is identified by ``ghl_contact_id`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from capi_stream.event import ConversionEvent, Source
from producers.adapters import signatures
from producers.adapters.base import (
    UNPROCESSABLE,
    Ignored,
    PayloadError,
    SignatureError,
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
from producers.adapters.money import normalise_currency, parse_major_amount

BOOKING_TYPES = frozenset({"AppointmentCreate", "AppointmentUpdate", "OpportunityCreate"})
NON_BOOKING_TYPES = frozenset({"AppointmentDelete", "OpportunityDelete"})
NON_BOOKING_PREFIXES = ("Contact", "Invoice", "Order", "Note", "Task", "Inbound", "Outbound")
IGNORED_STATUSES = frozenset({"cancelled", "canceled", "noshow", "invalid", "deleted"})
NO_SHOW_STAGE_WORDS = ("no show", "no-show", "noshow", "cancel")
PAYMENT_STAGE_WORDS = ("deposit", "paid", "pay in full", "payment")
ATTRIBUTION_KEYS = {
    "fbclid": ("fbclid",),
    "fbc": ("fbc",),
    "fbp": ("fbp",),
    "ad_id": ("adId", "ad_id"),
    "utm_source": ("utmSource", "utm_source"),
    "utm_medium": ("utmMedium", "utm_medium"),
    "utm_campaign": ("utmCampaign", "utm_campaign", "campaign"),
    "utm_content": ("utmContent", "utm_content"),
    "utm_term": ("utmTerm", "utm_term"),
    "landing_url": ("url",),
}


def _ignore_reason(payload: dict[str, Any], custom: dict[str, Any]) -> str | None:
    kind = first_text(payload.get("type"), custom.get("event_type"))
    native = "webhookId" in payload or isinstance(payload.get("appointment"), dict)
    if kind is not None and (kind in NON_BOOKING_TYPES or kind.startswith(NON_BOOKING_PREFIXES)):
        return f"ghl event {kind} is not a booking"
    if native and kind is not None and kind not in BOOKING_TYPES:
        return f"ghl event {kind} is not a booking"
    appointment, calendar = obj(payload.get("appointment")), obj(payload.get("calendar"))
    status = first_text(
        appointment.get("appointmentStatus"),
        calendar.get("appoinmentStatus"),  # GHL's own spelling
        calendar.get("appointmentStatus"),
        calendar.get("status"),
    )
    if status is not None:
        squashed = status.lower().replace(" ", "").replace("_", "").replace("-", "")
        if squashed in IGNORED_STATUSES:
            return f"appointment {status}"
    stage = first_text(
        payload.get("pipleline_stage"),  # GHL's own spelling
        payload.get("pipeline_stage"),
        payload.get("opportunity_stage"),
        custom.get("pipeline_stage"),
    )
    lowered = (stage or "").lower()
    if any(word in lowered for word in NO_SHOW_STAGE_WORDS):
        return f"pipeline stage {stage!r} is not a booking"
    if any(word in lowered for word in PAYMENT_STAGE_WORDS):
        return f"pipeline stage {stage!r} is a payment (reported by the payment source)"
    return None


def _attribution(payload: dict[str, Any], custom: dict[str, Any]) -> dict[str, Any]:
    contact = obj(payload.get("contact"))
    sources = [
        obj(contact.get("attributionSource")),
        obj(payload.get("attributionSource")),
        obj(contact.get("lastAttributionSource")),
        obj(payload.get("lastAttributionSource")),
    ]
    found = {
        field: first_text(*(src.get(key) for src in sources for key in keys))
        for field, keys in ATTRIBUTION_KEYS.items()
    }
    found["ad_id"] = first_text(custom.get("AD_ID"), payload.get("AD_ID"), found["ad_id"])
    found["user_agent"] = first_text(*(src.get("userAgent") for src in sources))
    found["ip"] = first_text(*(src.get("ip") for src in sources))
    return found


class GhlAdapter:
    """GoHighLevel booking -> ``AddToCart`` (``system_generated``, or ``website``)."""

    source: Source = "ghl"

    def verify(self, request: WebhookRequest, secrets: Mapping[str, Any] | None) -> None:
        """Marketplace signature plus timestamp window, else the workflow shared secret."""
        if secrets is None:
            raise SignatureError("no secret configured for ghl")
        ed_signature = request.headers.get(signatures.GHL_ED25519_HEADER)
        rsa_signature = request.headers.get(signatures.GHL_RSA_HEADER)
        ed_key = text(secrets.get("public_key_ed25519"))
        rsa_key = text(secrets.get("public_key_rsa"))
        if ed_signature and ed_key:
            key = signatures.load_ed25519_public_key(ed_key)
            signatures.verify_ghl_ed25519(request.body, ed_signature, key)
        elif rsa_signature and rsa_key:
            rsa = signatures.load_rsa_public_key(rsa_key)
            signatures.verify_ghl_rsa(request.body, rsa_signature, rsa)
        elif ed_signature or rsa_signature:
            raise SignatureError("no ghl public key configured for the signature sent")
        else:
            candidates = signatures.configured_secrets(
                secrets, "workflow_secret", "previous_workflow_secret"
            )
            presented = signatures.presented_secret(request.headers)
            signatures.verify_shared_secret(presented, candidates, self.source)
            return
        self._check_timestamp(request)

    @staticmethod
    def _check_timestamp(request: WebhookRequest) -> None:
        try:
            sent_at = parse_time(load_object(request.body).get("timestamp"))
        except PayloadError as exc:
            raise SignatureError("signed body has no timestamp") from exc
        if sent_at is None:
            raise SignatureError("signed body has no timestamp")
        if abs(request.received_at - sent_at) > signatures.GHL_TOLERANCE:
            raise SignatureError("webhook timestamp outside the 5-minute window")

    def delivery_id(self, request: WebhookRequest) -> str | None:
        """The marketplace ``webhookId``; workflow webhooks have none."""
        try:
            return text(load_object(request.body).get("webhookId"))
        except PayloadError:
            return None

    def parse(self, request: WebhookRequest) -> ConversionEvent | Ignored:
        """Map a booking to ``AddToCart``; ignore everything that is not a live booking."""
        payload = load_object(request.body)
        custom = obj(payload.get("customData"))
        reason = _ignore_reason(payload, custom)
        if reason is not None:
            return Ignored(reason)
        appointment, calendar = obj(payload.get("appointment")), obj(payload.get("calendar"))
        contact_id = first_text(
            payload.get("contact_id"),
            payload.get("contactId"),
            custom.get("contact_id"),
            appointment.get("contactId"),
        )
        appointment_id = first_text(appointment.get("id"), calendar.get("appointmentId"))
        opportunity_id = first_text(payload.get("opportunity_id"), payload.get("id"))
        if appointment_id is not None:
            source_event_id = appointment_id
        elif contact_id is not None and opportunity_id is not None:
            source_event_id = f"{contact_id}:{opportunity_id}:booked"
        else:
            raise PayloadError("missing appointment id", status_code=UNPROCESSABLE)
        event_time = business_time(
            request.received_at,
            appointment.get("dateAdded"),
            calendar.get("dateAdded"),
            calendar.get("date_created"),
            payload.get("dateAdded"),
        )
        attribution = _attribution(payload, custom)
        url, user_agent = attribution.pop("landing_url"), attribution.pop("user_agent")
        ip = attribution.pop("ip")
        website = url is not None and user_agent is not None
        first, last = split_name(first_text(payload.get("full_name"), payload.get("fullName")))
        user = {
            "emails": unique([text(payload.get("email"))]),  # customData.email may be the host's
            "phones": unique([text(payload.get("phone"))]),
            "first_name": first_text(payload.get("first_name"), payload.get("firstName"), first),
            "last_name": first_text(payload.get("last_name"), payload.get("lastName"), last),
            "city": text(payload.get("city")),
            "state": text(payload.get("state")),
            "zip": first_text(payload.get("postal_code"), payload.get("postalCode")),
            "country": text(payload.get("country")),
            "date_of_birth": text(payload.get("date_of_birth")),
        }
        currency = normalise_currency(first_text(payload.get("currency"), custom.get("currency")))
        value = parse_major_amount(payload.get("monetaryValue"))
        return build_event(
            request,
            self.source,
            source_event_id,
            {
                "delivery_id": text(payload.get("webhookId")),
                "event_name": "AddToCart",
                "event_time": event_time,
                "action_source": "website" if website else "system_generated",
                "event_source_url": url if website else None,
                "client_user_agent": user_agent if website else None,
                "client_ip_address": ip,
                "user": user,
                "source_ids": {
                    "ghl_contact_id": contact_id,
                    "mc_subscriber_id": first_text(custom.get("MC_ID"), payload.get("MC_ID")),
                },
                "attribution": {**attribution, "landing_url": url},
                "custom_data": {
                    "value": value if currency else None,
                    "currency": currency if value is not None else None,
                },
            },
        )
