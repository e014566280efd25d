"""Denefits patient financing (contract created), usually relayed by Make.com -> ``Purchase``.

Credentials (``tenant_integrations.credentials`` for provider ``denefits``)::

    {"secret": "<endpoint secret_key>", "previous_secret": "<old one, during rotation>"}

Denefits puts its per-endpoint ``secret_key`` inside the JSON body; a Make.com relay may
instead (or also) send ``X-Capi-Secret`` / ``Authorization: Bearer``. Either matching is
enough. ``secret_key`` is never copied into the event; store raw bodies only through
:func:`redact_body`.

Only ``contract.created`` is a conversion: one Purchase per contract,
``source_event_id = f"{contract_code}:created"``, ``action_source="other"``, currency USD.
Recurring payments, ``contract.status`` changes, payouts and unknown types are ignored.

**Value = the patient's total commitment: ``financed_amount + downpayment_amount``**
(either may be absent). The reference leaves open whether ``financed_amount`` already
includes the down payment; Denefits' own contract reports list the two as separate rows,
so the sum is the committed treatment price. Amounts are decimal USD, numbers or strings (Make.com
templates them as text, e.g. ``"1,500.00"``).

``event_time`` is ``date_added``: a contract replayed after more than 7 days still maps;
the consumer records it as expired rather than sending it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from capi_stream.event import ConversionEvent, Source
from producers.adapters import signatures
from producers.adapters.base import (
    MALFORMED,
    UNPROCESSABLE,
    Ignored,
    PayloadError,
    SignatureError,
    WebhookRequest,
    build_event,
    business_time,
    dig,
    first_text,
    load_object,
    obj,
    text,
    unique,
)
from producers.adapters.money import parse_major_amount

SECRET_FIELD = "secret_key"  # noqa: S105 -- a field name, not a secret
CONVERSION_TYPE = "contract.created"


def _strip_secret(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_secret(v) for k, v in value.items() if k != SECRET_FIELD}
    if isinstance(value, list):
        return [_strip_secret(v) for v in value]
    return value


def redact_body(body: bytes) -> bytes:
    """The body with every ``secret_key`` removed, for logs and raw-payload storage.

    A body that is not JSON but mentions ``secret_key`` cannot be redacted: ``b""``.
    """
    try:
        return json.dumps(_strip_secret(json.loads(body)), separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        return b"" if SECRET_FIELD.encode() in body else body


def _contract(payload: dict[str, Any]) -> dict[str, Any]:
    candidates = (dig(payload, "data", "contract"), payload.get("contract"), payload.get("data"))
    for candidate in (*candidates, payload):
        if isinstance(candidate, dict) and (
            "contract_code" in candidate or "contract_id" in candidate
        ):
            return candidate
    return payload


def _ignore_reason(kind: str | None) -> str:
    if kind is None:
        return "denefits webhook without a type"
    if kind == "contract.payments.recurring_payment":
        return "recurring payment (the contract's Purchase was sent at creation)"
    if kind == "contract.status":
        return "contract status change"
    if kind.lower().startswith("payout"):
        return f"payout event {kind}"
    return f"denefits webhook {kind} is not a new contract"


class DenefitsAdapter:
    """Denefits contract created -> ``Purchase`` (``other``, USD)."""

    source: Source = "denefits"

    def verify(self, request: WebhookRequest, secrets: Mapping[str, Any] | None) -> None:
        """Match the body's ``secret_key`` or the secret header against the tenant's secret."""
        if secrets is None:
            raise SignatureError("no secret configured for denefits")
        candidates = signatures.configured_secrets(secrets, "secret", "previous_secret")
        if not candidates:
            raise SignatureError("no secret configured for denefits")
        try:
            body_secret = text(load_object(request.body).get(SECRET_FIELD))
        except PayloadError:
            body_secret = None
        presented = [body_secret, signatures.presented_secret(request.headers)]
        offered = [p for p in presented if p is not None]
        if not offered:
            raise SignatureError("missing secret")
        if not any(signatures.secret_matches(p, candidates) for p in offered):
            raise SignatureError("invalid secret")

    def delivery_id(self, request: WebhookRequest) -> str | None:
        """Denefits sends no delivery id in the body."""
        return None

    def parse(self, request: WebhookRequest) -> ConversionEvent | Ignored:
        """Map ``contract.created`` to one ``Purchase`` valued at the total commitment."""
        payload = load_object(request.body)  # only named fields are copied: never secret_key
        kind = first_text(payload.get("webhook_type"), payload.get("event_type"))
        kind = kind or first_text(payload.get("type"))
        if kind != CONVERSION_TYPE:
            return Ignored(_ignore_reason(kind))
        contract = _contract(payload)
        code = first_text(contract.get("contract_code"), contract.get("contract_id"))
        if code is None:
            raise PayloadError("missing contract_code", status_code=UNPROCESSABLE)
        financed = parse_major_amount(contract.get("financed_amount"))
        down = parse_major_amount(contract.get("downpayment_amount"))
        if financed is None and down is None:
            raise PayloadError("missing or invalid contract amount", status_code=MALFORMED)
        value = (financed or Decimal(0)) + (down or Decimal(0))
        customer = obj(contract.get("customer"))
        return build_event(
            request,
            self.source,
            f"{code}:created",
            {
                "event_name": "Purchase",
                "event_time": business_time(request.received_at, contract.get("date_added")),
                "action_source": "other",
                "user": {
                    "emails": unique(
                        [
                            text(contract.get("customer_email")),
                            text(contract.get("email")),
                            text(customer.get("email")),
                        ]
                    ),
                    "phones": unique(
                        [
                            text(contract.get("customer_mobile")),
                            text(contract.get("customer_phone")),
                            text(customer.get("phone")),
                        ]
                    ),
                    "first_name": first_text(
                        contract.get("customer_first_name"), customer.get("first_name")
                    ),
                    "last_name": first_text(
                        contract.get("customer_last_name"), customer.get("last_name")
                    ),
                },
                "source_ids": {"denefits_contract_code": code},
                "custom_data": {"value": value, "currency": "USD", "order_id": code},
            },
        )
