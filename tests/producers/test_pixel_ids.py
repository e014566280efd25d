"""The page's event id equals the server's: adapter, Python scheme and the JS helper (node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from capi_stream.event import ConversionEvent
from capi_stream.pixel import (
    PIXEL_SCHEMES,
    PixelKeyError,
    build_pixel_event_id,
    build_source_event_id,
    perspective_email_person,
)
from producers.adapters import ADAPTERS
from tests.fixtures.webhooks import TENANT_ID, fixture_bytes, make_request

SCRIPT = Path(__file__).resolve().parents[2] / "producers" / "static" / "capi-pixel.js"

# (source, fixture, what the page holds): the key, or ("email", funnel, typed email).
CASES: list[tuple[str, str, Any]] = [
    ("stripe", "checkout_session_completed", "cs_test_0001"),
    ("stripe", "checkout_session_async_payment_succeeded", "cs_test_0002"),
    ("stripe", "payment_intent_succeeded", "pi_TEST0001"),
    ("stripe", "payment_intent_succeeded_jpy", "pi_TEST_JPY"),
    ("denefits", "contract_created", "TESTCODE0001"),
    ("denefits", "contract_created_strings", None),  # key read from the fixture below
    ("perspective", "documented", "LVNG_BOF_Calendly:ps_contact_FAKE0001"),
    ("perspective", "observed", ("email", "fn_FAKE0001", " Jane@Example.com")),
    ("ghl", "appointment_create", "appt_FAKE0001"),
    ("ghl", "workflow_booked", "appt_FAKE0001"),
    ("chatbot", "subscriber", "1234567891"),
    ("chatbot", "flat", None),
]


def _server_event(source: str, fixture: str) -> ConversionEvent:
    event = ADAPTERS[source].parse(make_request(fixture_bytes(source, fixture)))
    assert isinstance(event, ConversionEvent), event
    return event


def _page_key(source: str, event: ConversionEvent, held: Any) -> Any:
    if held is not None:
        return held
    # The key the page holds is the business key without the scheme's suffix.
    suffix = PIXEL_SCHEMES[source].suffix
    return event.source_event_id.removesuffix(suffix) if suffix else event.source_event_id


def _run_node(cases: list[dict[str, Any]]) -> list[dict[str, str]]:
    node = shutil.which("node")
    assert node is not None, "node (v20+) is required to test the pixel helper"
    driver = (
        "const p = require(process.argv[1]);"
        "const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "Promise.all(cases.map(async c => {"
        "  const key = c.email ? c.funnel + ':' + await p.perspectiveEmailPerson(c.email) : c.key;"
        "  return {id: await p.eventId(c.tenant, c.source, key), name: p.eventName(c.source)};"
        "})).then(r => process.stdout.write(JSON.stringify(r)));"
    )
    done = subprocess.run(  # noqa: S603 -- fixed arguments, our own script
        [node, "-e", driver, str(SCRIPT)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_every_source_yields_the_same_id_on_the_page_and_on_the_server() -> None:
    node_cases: list[dict[str, Any]] = []
    expected: list[tuple[str, str]] = []
    for source, fixture, held in CASES:
        event = _server_event(source, fixture)
        held = _page_key(source, event, held)
        if isinstance(held, tuple):
            _, funnel, email = held
            node_cases.append(
                {"tenant": str(TENANT_ID), "source": source, "funnel": funnel, "email": email}
            )
            key = f"{funnel}:{perspective_email_person(email)}"
        else:
            node_cases.append({"tenant": str(TENANT_ID), "source": source, "key": held})
            key = held
        assert build_pixel_event_id(TENANT_ID, source, key) == event.event_id, (source, fixture)
        assert PIXEL_SCHEMES[source].event_name == event.event_name
        expected.append((event.event_id, event.event_name))
    from_node = _run_node(node_cases)
    assert [(r["id"], r["name"]) for r in from_node] == expected
    assert {source for source, _, _ in CASES} == set(PIXEL_SCHEMES)


def test_the_helper_accepts_an_upper_case_tenant_id() -> None:
    [result] = _run_node([{"tenant": str(TENANT_ID).upper(), "source": "ghl", "key": "a1"}])
    assert result["id"] == build_pixel_event_id(TENANT_ID, "ghl", "a1")


@pytest.mark.parametrize(
    ("source", "key"),
    [("api", "order-42"), ("stripe", ""), ("stripe", "cs 1"), ("ghl", "x" * 256)],
)
def test_unusable_keys_are_refused(source: str, key: str) -> None:
    with pytest.raises(PixelKeyError):
        build_source_event_id(source, key)


def test_a_refused_lookup_falls_back_to_the_local_id_at_once() -> None:
    node = shutil.which("node")
    assert node is not None
    driver = (
        "const p = require(process.argv[1]); let calls = 0;"
        "const refuse = async () => { calls++; return {ok: false, status: 403}; };"
        "p.lookup('https://capi.example', process.argv[2], 'stripe', 'cs_x', {fetch: refuse})"
        ".then(r => process.stdout.write(JSON.stringify({...r, calls})));"
    )
    done = subprocess.run(  # noqa: S603 -- fixed arguments, our own script
        [node, "-e", driver, str(SCRIPT), str(TENANT_ID)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(done.stdout)
    assert answer == {
        "event_id": build_pixel_event_id(TENANT_ID, "stripe", "cs_x"),
        "event_name": "Purchase",
        "external_id": None,
        "calls": 1,
    }
