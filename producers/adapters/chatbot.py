"""ManyChat External Request (a DM conversation qualifies the lead) -> ``Lead``.

Credentials (``tenant_integrations.credentials`` for provider ``chatbot``)::

    {"secret": "<token>", "previous_secret": "<old token, during rotation>"}

ManyChat signs nothing; the flow's External Request step must send the token as header
``X-Capi-Secret: <token>`` or ``Authorization: Bearer <token>``.

Accepted bodies, each optionally wrapped in a one-element array: (a) flat, as a hand-built
External Request body (``subscriber_id``, ``email``, ``custom_fields``...); (b)
``{"event_type": ..., "subscriber": {"id": ..., ...}}``. ``custom_fields`` may be a
name->value map or ManyChat's API array of ``{"name", "value"}``. An ``event_type`` other
than a qualification (``contact_created``, ``link_sent``, ``link_clicked``) is ignored; no
``event_type`` means the flow calls only on qualification.

One Lead per subscriber: ``source_event_id = f"{subscriber_id}:qualified"``. The event is
sent as ``action_source="chat"`` under the name ``Lead`` (``business_messaging`` would need
Meta's own messaging ids and the name ``QualifiedLead``; ManyChat's ids are not proven to
be those).
"""

from __future__ import annotations

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
    split_name,
    text,
    unique,
)

QUALIFYING_EVENT_TYPES = frozenset({"dm_qualified", "qualified", "lead_qualified", "lead"})


def custom_field_map(value: Any) -> dict[str, Any]:
    """ManyChat custom fields as name -> value, from a map or an array of ``{name, value}``."""
    if isinstance(value, dict):
        return value
    fields: dict[str, Any] = {}
    if isinstance(value, list):
        for item in value:
            name = text(obj(item).get("name"))
            if name is not None:
                fields.setdefault(name, obj(item).get("value"))
    return fields


class ChatbotAdapter(signatures.SharedSecretVerifier):
    """ManyChat DM qualification -> ``Lead`` (``chat``)."""

    source: Source = "chatbot"

    def parse(self, request: WebhookRequest) -> ConversionEvent | Ignored:
        """Map one External Request body to a ``Lead``."""
        payload = load_object(request.body)
        event_type = text(payload.get("event_type"))
        if event_type is not None and event_type.lower() not in QUALIFYING_EVENT_TYPES:
            return Ignored(f"manychat event_type {event_type!r} is not a qualification")
        nested = obj(payload.get("subscriber"))
        # The subscriber object wins over the envelope, except where it holds null.
        person = {**payload, **{k: v for k, v in nested.items() if v is not None}}
        subscriber_id = first_text(nested.get("id"), payload.get("subscriber_id"))
        if subscriber_id is None:
            raise PayloadError("missing subscriber_id", status_code=UNPROCESSABLE)
        fields = custom_field_map(nested.get("custom_fields", payload.get("custom_fields")))
        first, last = split_name(text(person.get("name")))
        fields_email = first_text(fields.get("custom field email"), fields.get("MCB_SEARCH_EMAIL"))
        user = {
            "emails": unique([text(person.get("email")), fields_email]),
            "phones": unique([text(person.get("phone")), text(person.get("whatsapp_phone"))]),
            "first_name": first_text(person.get("first_name"), first),
            "last_name": first_text(person.get("last_name"), last),
            "gender": text(person.get("gender")),
            "ctwa_clid": first_text(person.get("ctwa_clid"), fields.get("ctwa_clid")),
        }
        attribution = {
            "ad_id": first_text(fields.get("AD_ID"), fields.get("ADID"), person.get("ad_id")),
            "fbclid": first_text(fields.get("fbclid"), person.get("fbclid")),
            "fbc": first_text(fields.get("fbc"), person.get("fbc")),
            "fbp": first_text(fields.get("fbp"), person.get("fbp")),
        }
        event_time = business_time(
            request.received_at, person.get("last_interaction"), person.get("last_seen")
        )
        return build_event(
            request,
            self.source,
            f"{subscriber_id}:qualified",
            {
                "event_name": "Lead",
                "event_time": event_time,
                "action_source": "chat",
                "user": user,
                "source_ids": {"mc_subscriber_id": subscriber_id},
                "attribution": attribution,
            },
        )
