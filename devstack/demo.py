"""Demo traffic: signed webhooks from all five sources, and where each event ended up."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from sqlalchemy.orm import Session, sessionmaker

from devstack.payloads import BUILDERS
from devstack.seed import DemoTenant
from producers.adapters.signatures import SECRET_HEADER, sign_stripe
from storage.lookups import read_event_statuses
from storage.models import EventStatus

FINAL_STATUSES = frozenset({EventStatus.SENT, EventStatus.DEAD, EventStatus.EXPIRED})


@dataclass(frozen=True, slots=True)
class DemoDelivery:
    """One webhook the demo sent and how the app answered."""

    source: str
    http_status: int
    event_id: str | None
    answer: str


def signed_headers(tenant: DemoTenant, source: str, body: bytes) -> dict[str, str]:
    """Headers a real sender would add: Stripe's signature, else the tenant's shared secret."""
    headers = {"content-type": "application/json"}
    if source == "stripe":
        headers["stripe-signature"] = sign_stripe(body, tenant.stripe_secret, int(time.time()))
    else:
        headers[SECRET_HEADER] = tenant.shared_secret
    return headers


def send_demo_burst(
    base_url: str, tenant: DemoTenant, per_source: int = 2, sources: Sequence[str] | None = None
) -> list[DemoDelivery]:
    """POST ``per_source`` distinct conversions from each source; unique per call."""
    offset = uuid.uuid4().int % 900_000
    deliveries: list[DemoDelivery] = []
    with httpx.Client(timeout=15.0) as client:
        for source in sources or sorted(BUILDERS):
            for n in range(per_source):
                body = json.dumps(BUILDERS[source](offset + n)).encode()
                response = client.post(
                    tenant.webhook_url(base_url, source),
                    content=body,
                    headers=signed_headers(tenant, source, body),
                )
                answer = response.json() if response.content else {}
                deliveries.append(
                    DemoDelivery(
                        source,
                        response.status_code,
                        answer.get("event_id"),
                        str(answer.get("status") or answer.get("error", {}).get("message", "")),
                    )
                )
    return deliveries


def wait_for_outcomes(
    sessions: sessionmaker[Session], event_ids: Sequence[str], timeout: float = 30.0
) -> dict[str, str]:
    """Poll the events table until every event has a final status (or the time is up)."""
    deadline = time.monotonic() + timeout
    statuses: dict[str, str] = {}
    while True:
        with sessions() as session:
            statuses = read_event_statuses(session, event_ids)
        done = len(statuses) == len(event_ids) and set(statuses.values()) <= FINAL_STATUSES
        if done or time.monotonic() > deadline:
            return statuses
        time.sleep(0.2)


def curl_examples(base_url: str, tenant: DemoTenant) -> dict[str, str]:
    """A copy-paste command per source (Stripe's signature is computed with openssl)."""
    examples: dict[str, str] = {}
    for source, build in sorted(BUILDERS.items()):
        body = json.dumps(build(424242))
        url = tenant.webhook_url(base_url, source)
        if source == "stripe":
            examples[source] = (
                f"BODY='{body}'; T=$(date +%s); "
                f'SIG=$(printf \'%s.%s\' "$T" "$BODY" | openssl dgst -sha256 -hmac '
                f"'{tenant.stripe_secret}' | sed 's/^.* //'); "
                f"curl -sS -X POST '{url}' -H 'content-type: application/json' "
                f'-H "stripe-signature: t=$T,v1=$SIG" --data "$BODY"'
            )
        else:
            examples[source] = (
                f"curl -sS -X POST '{url}' -H 'content-type: application/json' "
                f"-H '{SECRET_HEADER}: {tenant.shared_secret}' --data '{body}'"
            )
    return examples
