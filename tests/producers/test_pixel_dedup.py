"""Pixel and server together, end to end: the page's pixel event carries exactly the
``event_id`` and ``external_id`` that capi-stream sent to Meta for the same purchase.

A signed Stripe Checkout webhook goes through the real app, the broker and the real worker to
the Meta emulator. The page side is the snippet ``capi pixel-snippet`` prints, run by node
with ``capi-pixel.js``: it computes the id itself and asks ``GET /pixel/...`` (answered by
the real app; node's ``fetch`` replays those answers, since the app runs in-process here)
for the external_id. What ``fbq`` received is compared with what Meta received.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames
from capi_stream.pixel import PIXEL_PROVIDER
from ops.cli import cli
from ops.pixel_status import query_pixel_readiness
from storage.tenants import META_PROVIDER, upsert_integration
from tests.support.emulator_fixture import Emulator
from tests.support.webhook_fixtures import (
    AppHarness,
    chatbot_lead,
    seed_tenant,
    stripe_event,
    test_runtime,
)
from tests.support.worker_fixtures import (
    TOKEN,
    RunningWorker,
    make_worker_config,
    running_worker,
    wait_for,
)

PIXEL = "5151515151"
SHOP = "https://shop.example"
SCRIPT = Path(__file__).resolve().parents[2] / "producers" / "static" / "capi-pixel.js"


@pytest.fixture
def harness(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    db_engine: Engine,
    session_factory: sessionmaker[Session],
) -> Iterator[AppHarness]:
    with AppHarness(test_runtime(kafka_config, topic_names, db_engine, session_factory)) as app:
        yield app


@pytest.fixture
def tenant(session_factory: sessionmaker[Session]) -> uuid.UUID:
    tenant_id = seed_tenant(session_factory)
    with session_factory.begin() as session:
        credentials = {"pixel_id": PIXEL, "capi_access_token": TOKEN}
        upsert_integration(session, tenant_id, META_PROVIDER, credentials)
        upsert_integration(session, tenant_id, PIXEL_PROVIDER, {"allowed_origins": [SHOP]})
    return tenant_id


@pytest.fixture
def worker(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> Iterator[RunningWorker]:
    config = make_worker_config(group_id, emulator.base_url)
    with running_worker(kafka_config, topic_names, session_factory, config) as running:
        yield running


def checkout_completed(session_id: str, fbp: str, fbc: str) -> bytes:
    """A paid Checkout Session whose page put the pixel's cookies into the metadata."""
    return stripe_event(
        "checkout.session.completed",
        {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "payment_status": "paid",
            "status": "complete",
            "amount_total": 4900,
            "currency": "eur",
            "payment_intent": f"pi_{uuid.uuid4().hex[:20]}",
            "customer_details": {"email": "buyer@example.com", "name": "Bea Buyer"},
            "metadata": {"fbp": fbp, "fbc": fbc},
        },
    )


def run_page(snippet: str, url_query: str, answers: list[dict[str, Any]]) -> list[list[Any]]:
    """Run the snippet's inline script in node as the thank-you page; return the fbq calls."""
    node = shutil.which("node")
    assert node is not None, "node (v20+) is required to run the page"
    inline = snippet.split("<script>", 1)[1].split("</script>", 1)[0]
    driver = f"""
const answers = {json.dumps(answers)};
const calls = [];
globalThis.window = {{location: {{search: {json.dumps(url_query)}}}}};
globalThis.fbq = (...args) => calls.push(args);
let served = 0;
globalThis.fetch = async () => {{
  const answer = answers[Math.min(served++, answers.length - 1)];
  return {{ok: true, json: async () => answer}};
}};
globalThis.capiPixel = require({json.dumps(str(SCRIPT))});
{inline}
const done = () => calls.some(c => c[0] === "track" && c[1] !== "PageView");
const wait = () => done() ? process.stdout.write(JSON.stringify(calls)) : setTimeout(wait, 20);
wait();
"""
    finished = subprocess.run(  # noqa: S603 -- our own driver
        [node, "-e", driver], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(finished.stdout)  # type: ignore[no-any-return]


def ask(harness: AppHarness, tenant: uuid.UUID, source: str, key: str, origin: str = SHOP) -> Any:
    return harness.get(f"/pixel/{tenant}/{source}/event-id?key={key}", {"origin": origin})


def test_the_page_sends_the_event_id_and_external_id_meta_got_from_the_server(
    harness: AppHarness,
    tenant: uuid.UUID,
    worker: RunningWorker,
    emulator: Emulator,
    session_factory: sessionmaker[Session],
    db_url: str,
) -> None:
    session_id = f"cs_test_{uuid.uuid4().hex}"
    fbp = f"fb.1.{int(time.time() * 1000) - 60_000}.987654321"
    fbc = f"fb.1.{int(time.time() * 1000) - 60_000}.IwAR_PAGE_CLICK"
    # Before the webhook: the page already has its id; the server says "pending".
    early = ask(harness, tenant, "stripe", session_id)
    assert early.status_code == 200
    assert early.headers["access-control-allow-origin"] == SHOP
    assert early.json()["pending"] is True and early.json()["external_id"] is None

    accepted = harness.send(tenant, "stripe", checkout_completed(session_id, fbp, fbc))
    assert accepted.status_code == 202
    server_id = accepted.json()["event_id"]

    def at_meta() -> dict[str, Any] | None:
        found = [e.payload for e in emulator.state.events(PIXEL)]
        return next((p for p in found if p["event_id"] == server_id), None)

    sent = wait_for(at_meta, timeout=60, what="the purchase at Meta")
    assert sent is not None

    def answered() -> dict[str, Any] | None:
        answer: dict[str, Any] = ask(harness, tenant, "stripe", session_id).json()
        return answer if not answer["pending"] else None

    final = wait_for(answered, timeout=30, what="the stored purchase")
    assert final is not None
    assert final["event_id"] == server_id and final["event_name"] == "Purchase"

    result = CliRunner().invoke(
        cli,
        [
            "pixel-snippet",
            "--tenant",
            str(tenant),
            "--source",
            "stripe",
            "--server-url",
            "https://capi.example",
        ],
        env={"DATABASE_URL": db_url},
    )
    assert result.exit_code == 0, result.output
    calls = run_page(result.output, f"?session_id={session_id}", [early.json(), final])

    [init] = [c for c in calls if c[0] == "init"]
    [purchase] = [c for c in calls if c[0] == "track" and c[1] == "Purchase"]
    user = sent["user_data"]
    assert sent["event_name"] == purchase[1] == "Purchase"
    assert purchase[3] == {"eventID": sent["event_id"]}
    assert init[1] == PIXEL
    assert init[2]["external_id"] in user["external_id"]
    assert user["fbp"] == fbp and user["fbc"] == fbc  # the page's cookies reached Meta

    with session_factory() as session:
        [readiness] = query_pixel_readiness(session, tenant)
    assert readiness.shares() == {"fbp": 1.0, "external_id": 1.0, "reproducible_event_id": 1.0}
    assert readiness.event_name == "Purchase"


def test_the_lookup_endpoint_guards_origins_keys_and_identity(
    harness: AppHarness, tenant: uuid.UUID
) -> None:
    key = "1234567891"
    lead = ask(harness, tenant, "chatbot", key)
    assert lead.status_code == 200
    assert set(lead.json()) == {"event_id", "event_name", "source_event_id"}  # no identity
    assert lead.json()["source_event_id"] == f"{key}:qualified"
    assert lead.headers["cache-control"] == "no-store"

    other = ask(harness, tenant, "stripe", "cs_test_1", origin="https://evil.example")
    assert other.status_code == 403
    assert "access-control-allow-origin" not in other.headers
    no_origin = harness.get(f"/pixel/{tenant}/ghl/event-id?key=appt_1")
    assert no_origin.status_code == 200 and "access-control-allow-origin" not in no_origin.headers
    assert ask(harness, tenant, "api", "order-1").status_code == 404
    assert ask(harness, tenant, "stripe", "").status_code == 400
    assert ask(harness, uuid.uuid4(), "stripe", "cs_test_1").status_code == 404
    script = harness.get("/pixel/capi-pixel.js")
    assert script.status_code == 200 and b"uuid5" in script.content


def test_the_helper_matches_the_webhook_response_for_a_lead(
    harness: AppHarness, tenant: uuid.UUID
) -> None:
    accepted = harness.send(tenant, "chatbot", chatbot_lead("24680"))
    assert accepted.status_code == 202
    answer = ask(harness, tenant, "chatbot", "24680").json()
    assert answer["event_id"] == accepted.json()["event_id"]
    assert answer["event_id"] == browser_event_id(str(tenant), "chatbot", "24680")


def browser_event_id(tenant: str, source: str, key: str) -> str:
    """The id as the browser computes it, by node."""
    node = shutil.which("node")
    assert node is not None
    code = (
        f"require({json.dumps(str(SCRIPT))}).eventId({json.dumps(tenant)}, "
        f"{json.dumps(source)}, {json.dumps(key)}).then(id => process.stdout.write(id))"
    )
    done = subprocess.run(  # noqa: S603 -- our own script
        [node, "-e", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout
