"""Per-source webhook adapters: verify a request, name its delivery, map it to an event.

``ADAPTERS`` maps each source name (the route) to its adapter; see ``base`` for the
contract and ``producers.adapters.signatures`` for the checks and the ``sign_*`` test helpers.
"""

from __future__ import annotations

from producers.adapters.base import (
    Ignored,
    PayloadError,
    SignatureError,
    WebhookAdapter,
    WebhookRejectedError,
    WebhookRequest,
)
from producers.adapters.chatbot import ChatbotAdapter
from producers.adapters.denefits import DenefitsAdapter, redact_body
from producers.adapters.ghl import GhlAdapter
from producers.adapters.perspective import PerspectiveAdapter
from producers.adapters.stripe import StripeAdapter

ADAPTERS: dict[str, WebhookAdapter] = {
    adapter.source: adapter
    for adapter in (
        ChatbotAdapter(),
        GhlAdapter(),
        PerspectiveAdapter(),
        StripeAdapter(),
        DenefitsAdapter(),
    )
}

__all__ = [
    "ADAPTERS",
    "ChatbotAdapter",
    "DenefitsAdapter",
    "GhlAdapter",
    "Ignored",
    "PayloadError",
    "PerspectiveAdapter",
    "SignatureError",
    "StripeAdapter",
    "WebhookAdapter",
    "WebhookRejectedError",
    "WebhookRequest",
    "redact_body",
]
