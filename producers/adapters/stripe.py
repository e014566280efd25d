"""Stripe (payment received) -> ``Purchase``.

Credentials (``tenant_integrations.credentials`` for provider ``stripe``)::

    {"webhook_secret": "whsec_...", "webhook_secrets": ["whsec_new", "whsec_old"]}

Either key may be used; all secrets listed are tried (rotation). The ``Stripe-Signature``
header is verified over the raw body with a 300 s tolerance against ``received_at``.

Conversions: ``checkout.session.completed`` (only with ``payment_status == "paid"``),
``checkout.session.async_payment_succeeded``, ``payment_intent.succeeded``, ``invoice.paid``,
``invoice.payment_succeeded`` and ``charge.succeeded``; every other type is ignored. The
events of one payment collapse onto one ``source_event_id`` (also ``custom_data.order_id``),
the id its thank-you page receives (``capi_stream.pixel``): a Checkout Session's events use
the session id (``cs_...``, the success URL's ``{CHECKOUT_SESSION_ID}``); PaymentIntent,
charge and invoice events use the PaymentIntent id, else the invoice id. Stripe's
PaymentIntent and charge objects do not name the Checkout Session that created them, so a
Checkout integration subscribes its endpoint to ``checkout.session.*`` only (Stripe's own
fulfilment advice) and a Payment Element integration to ``payment_intent.succeeded``; an
endpoint subscribed to both families counts a Checkout payment twice. The ``evt_...`` id
is the delivery id. ``event_time`` is ``event.created``.

Amounts are minor units, converted exactly by the currency's exponent (``money``).
``action_source`` is ``system_generated`` for subscription renewals, ``website`` when
``metadata`` carries ``event_source_url`` and ``client_user_agent``, else ``other``.
``metadata`` (and ``client_reference_id``) may carry ``contact_id`` (our contact UUID),
``mc_id``, ``ghl_contact_id``, ``fbclid``, ``fbc``, ``fbp``, ``ad_id``, ``utm_*``,
``event_source_url``, ``client_user_agent`` and ``client_ip_address``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from capi_stream.event import ConversionEvent, Source
from producers.adapters import signatures
from producers.adapters.base import (
    MALFORMED,
    Ignored,
    PayloadError,
    SignatureError,
    WebhookRequest,
    build_event,
    dig,
    first_text,
    load_object,
    obj,
    parse_time,
    split_name,
    text,
    unique,
)
from producers.adapters.money import minor_amount, minor_to_major, normalise_currency

CONVERSION_TYPES = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "charge.succeeded",
    }
)
FAILURE_TYPES = frozenset(
    {
        "payment_intent.payment_failed",
        "charge.failed",
        "checkout.session.async_payment_failed",
        "invoice.payment_failed",
    }
)
AMOUNT_KEYS = ("amount_total", "amount_received", "amount_paid", "amount")
METADATA_ATTRIBUTION = (
    "fbclid",
    "fbc",
    "fbp",
    "ad_id",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
)


def _id_of(value: Any) -> str | None:
    """A Stripe reference: an id string, or an expanded object's ``id``."""
    return first_text(obj(value).get("id"), value)


def _amount(data: dict[str, Any]) -> int | None:
    for key in AMOUNT_KEYS:
        if (amount := minor_amount(data.get(key))) is not None:
            return amount
    return None


def _contact_uuid(*candidates: Any) -> uuid.UUID | None:
    for candidate in candidates:
        raw = text(candidate)
        if raw is None:
            continue
        try:
            return uuid.UUID(raw)
        except ValueError:
            continue
    return None


def _identity(data: dict[str, Any]) -> dict[str, Any]:
    charges = dig(data, "charges", "data")  # API versions before 2022-11-15 embed charges
    first_charge = charges[0] if isinstance(charges, list) and charges else None
    charge = obj(data.get("latest_charge")) or obj(first_charge)
    details = (
        obj(data.get("customer_details")),
        obj(data.get("billing_details")),
        obj(charge.get("billing_details")),
    )
    name = text(data.get("customer_name"))
    address: dict[str, Any] = {}
    emails: list[str | None] = []
    phones: list[str | None] = []
    for detail in details:
        if not detail:  # most of the three are absent: skip their lookups
            continue
        if name is None:
            name = text(detail.get("name"))
        if not address:
            address = obj(detail.get("address"))
        emails.append(text(detail.get("email")))
        phones.append(text(detail.get("phone")))
    emails += (text(data.get("customer_email")), text(data.get("receipt_email")))
    phones.append(text(data.get("customer_phone")))
    address = address or obj(data.get("customer_address"))
    first, last = split_name(name)
    return {
        "emails": unique(emails),
        "phones": unique(phones),
        "first_name": first,
        "last_name": last,
        "city": text(address.get("city")),
        "state": text(address.get("state")),
        "zip": text(address.get("postal_code")),
        "country": text(address.get("country")),
    }


class StripeAdapter:
    """Stripe payment -> ``Purchase`` (``other``, ``website`` or ``system_generated``)."""

    source: Source = "stripe"

    def verify(self, request: WebhookRequest, secrets: Mapping[str, Any] | None) -> None:
        """Check ``Stripe-Signature`` against every configured endpoint secret."""
        if secrets is None:
            raise SignatureError("no secret configured for stripe")
        signatures.verify_stripe_signature(
            request.body,
            request.headers.get(signatures.STRIPE_HEADER),
            signatures.configured_secrets(secrets, "webhook_secret", "webhook_secrets"),
            now=request.received_at,
        )

    def delivery_id(self, request: WebhookRequest) -> str | None:
        """The event id (``evt_...``)."""
        try:
            return text(load_object(request.body).get("id"))
        except PayloadError:
            return None

    def parse(self, request: WebhookRequest) -> ConversionEvent | Ignored:
        """Map one successful-payment event to ``Purchase``; ignore every other event."""
        event = load_object(request.body)
        kind = text(event.get("type"))
        if kind in FAILURE_TYPES:
            return Ignored(f"stripe {kind}: payment failed")
        if kind not in CONVERSION_TYPES:
            return Ignored(f"stripe event {kind} is not a payment")
        data = dig(event, "data", "object")
        if not isinstance(data, dict):
            raise PayloadError("missing data.object", status_code=MALFORMED)
        if kind == "checkout.session.completed" and data.get("payment_status") != "paid":
            return Ignored("checkout session not paid")
        object_id = _id_of(data.get("id"))
        if kind.startswith("payment_intent."):
            payment_intent: str | None = object_id
        else:
            payment_intent = _id_of(data.get("payment_intent"))
        invoice = object_id if kind.startswith("invoice.") else _id_of(data.get("invoice"))
        # A Checkout payment is keyed on its session: the one id its thank-you page receives
        # ({CHECKOUT_SESSION_ID}), so the page's pixel can send the same event_id
        # (capi_stream.pixel). A PaymentIntent flow's page receives the PaymentIntent id.
        if kind.startswith("checkout.session.") and object_id is not None:
            key: str | None = object_id
        else:
            key = payment_intent or invoice or object_id
        if key is None:
            raise PayloadError("missing payment id", status_code=MALFORMED)
        created = parse_time(event.get("created"))
        if created is None:
            raise PayloadError("missing event.created", status_code=MALFORMED)
        amount = _amount(data)
        currency = normalise_currency(data.get("currency"))
        if amount is None or currency is None:
            raise PayloadError("missing amount or currency", status_code=MALFORMED)
        if kind.startswith("invoice.") and amount == 0:
            return Ignored("zero-amount invoice")
        metadata = obj(data.get("metadata"))
        url = text(metadata.get("event_source_url"))
        user_agent = text(metadata.get("client_user_agent"))
        if data.get("billing_reason") == "subscription_cycle":
            action_source = "system_generated"
        elif url is not None and user_agent is not None:
            action_source = "website"
        else:
            action_source = "other"
        return build_event(
            request,
            self.source,
            key,
            {
                "delivery_id": text(event.get("id")),
                "contact_id": _contact_uuid(
                    metadata.get("contact_id"), data.get("client_reference_id")
                ),
                "event_name": "Purchase",
                "event_time": min(created, request.received_at),
                "action_source": action_source,
                "event_source_url": url,
                "client_user_agent": user_agent,
                "client_ip_address": text(metadata.get("client_ip_address")),
                "user": _identity(data),
                "source_ids": {
                    "stripe_customer_id": _id_of(data.get("customer")),
                    "mc_subscriber_id": first_text(metadata.get("mc_id"), metadata.get("MC_ID")),
                    "ghl_contact_id": first_text(
                        metadata.get("ghl_contact_id"), metadata.get("ghl_id")
                    ),
                },
                "attribution": {k: text(metadata.get(k)) for k in METADATA_ATTRIBUTION}
                if metadata
                else {},
                "custom_data": {
                    "value": minor_to_major(amount, currency),
                    "currency": currency,
                    "order_id": key,
                },
            },
        )
