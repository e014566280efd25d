"""Realistic demo webhooks, one builder per source; every value is invented.

Each call takes a sequence number so a burst yields distinct conversions (distinct
business keys), with business times a few minutes in the past.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

Payload = dict[str, Any] | list[dict[str, Any]]


def _iso(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def _person(n: int) -> dict[str, str]:
    return {
        "first_name": "Jane",
        "last_name": f"Doe{n}",
        "email": f"jane.doe{n}@example.com",
        "phone": f"+1 (415) 555-{n % 10000:04d}",
    }


def chatbot(n: int) -> Payload:
    person = _person(n)
    return {
        "subscriber_id": f"{9_000_000_000 + n}",
        "message": "hi, I would like to book a consultation",
        "custom_fields": {"AD_ID": "120200000000000001", "chatbot_AB": "A"},
        **person,
        "gender": "female",
    }


def ghl(n: int) -> Payload:
    person = _person(n)
    return {
        "contact_id": f"ghlc_demo{n:05d}",
        "id": f"opp_demo{n:05d}",
        **person,
        "country": "US",
        "calendar": {
            "appointmentId": f"appt_demo{n:05d}",
            "startTime": _iso(-2 * 24 * 60),  # the call itself is in two days
            "status": "booked",
            "dateAdded": _iso(3),
        },
        "contact": {
            "attributionSource": {"fbclid": f"IwAR_demo_{n}", "adId": "120200000000000009"}
        },
        "customData": {"MC_ID": f"{9_000_000_000 + n}"},
    }


def perspective(n: int) -> Payload:
    return {
        "id": f"ps_contact_demo{n:05d}",
        "funnelId": "funnel_demo",
        "funnelName": "Demo funnel",
        "profile": {
            "email": {"value": f"jane.doe{n}@example.com", "title": "Email"},
            "phone": {"value": f"+1 415 555 {n % 10000:04d}", "title": "Phone"},
        },
        "values": {"utm_source": "facebook", "fbclid": f"IwAR_demo_{n}"},
        "meta": {"createdAt": _iso(6), "convertedAt": _iso(4), "converted": True},
    }


def stripe(n: int) -> Payload:
    created = int(time.time()) - 120
    return {
        "id": f"evt_demo{n:06d}",
        "object": "event",
        "api_version": "2025-08-27.basil",
        "created": created,
        "type": "payment_intent.succeeded",
        "livemode": False,
        "data": {
            "object": {
                "id": f"pi_demo{n:06d}",
                "object": "payment_intent",
                "amount": 15000 + n,
                "amount_received": 15000 + n,
                "currency": "usd",
                "customer": f"cus_demo{n:05d}",
                "receipt_email": f"jane.doe{n}@example.com",
                "status": "succeeded",
                "created": created - 5,
                "metadata": {},
            }
        },
    }


def denefits(n: int) -> Payload:
    return [
        {
            "webhook_type": "contract.created",
            "data": {
                "contract": {
                    "contract_id": 990_000 + n,
                    "contract_code": f"DEMO{n:06d}",
                    "contract_status": "Active",
                    "customer_email": f"jane.doe{n}@example.com",
                    "customer_first_name": "Jane",
                    "customer_last_name": f"Doe{n}",
                    "customer_mobile": f"415555{n % 10000:04d}",
                    "financed_amount": "1500.00",
                    "downpayment_amount": "300.00",
                    "date_added": _iso(2),
                }
            },
        }
    ]


BUILDERS: dict[str, Callable[[int], Payload]] = {
    "chatbot": chatbot,
    "ghl": ghl,
    "perspective": perspective,
    "stripe": stripe,
    "denefits": denefits,
}
