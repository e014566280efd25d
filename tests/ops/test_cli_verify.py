"""`capi tenants verify` and `set-meta --graph-url` against the Graph API emulator.

The emulator answers each case as Meta does (accepted, 190/467 bad token, 100/33 unknown
pixel, 17 throttled); the command must say what Meta answered and the fix.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from capi_stream.database import build_engine
from ops.cli import cli
from ops.cli.verify_report import VERIFY_EVENT_NAME
from storage.migrate import migrate
from tests.support.emulator_fixture import Emulator, make_event

PIXEL = "5550001112223334"
TOKEN = "EAAB-verify-test-token-not-a-secret-42"


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'capi.db'}"
    engine = build_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def tenants(database: str, *args: str) -> Result:
    env = {"DATABASE_URL": database, "KAFKA_BOOTSTRAP_SERVERS": None, "META_GRAPH_URL": None}
    return CliRunner().invoke(cli, ["tenants", *args], env=env)


def tenant_on_emulator(database: str, emulator: Emulator) -> str:
    tenant_id = str(uuid.uuid4())
    assert tenants(database, "add", "--name", "Verify Co", "--id", tenant_id).exit_code == 0
    result = tenants(
        database,
        "set-meta",
        tenant_id,
        "--pixel-id",
        PIXEL,
        "--access-token",
        TOKEN,
        "--graph-url",
        emulator.base_url,
    )
    assert result.exit_code == 0, result.output
    assert f"graph url: {emulator.base_url}" in result.output
    return tenant_id


def test_verify_reports_what_meta_accepted_and_reuses_a_saved_code(
    database: str, emulator: Emulator
) -> None:
    tenant_id = tenant_on_emulator(database, emulator)
    result = tenants(database, "verify", tenant_id, "--test-event-code", "TEST777", "--save")
    assert result.exit_code == 0, result.output
    assert "Meta accepted the test event: events_received=1, fbtrace_id=" in result.output
    (event,) = emulator.state.events(PIXEL)
    assert event.test_event_code == "TEST777"
    assert event.payload["event_name"] == VERIFY_EVENT_NAME

    again = tenants(database, "verify", tenant_id)  # the saved code
    assert again.exit_code == 0, again.output
    assert [e.test_event_code for e in emulator.state.events(PIXEL)] == ["TEST777", "TEST777"]
    shown = tenants(database, "show", tenant_id).output
    assert "meta.graph_url" in shown and emulator.base_url in shown
    assert "TEST777" in shown and TOKEN not in shown


def _bad_token(emulator: Emulator) -> None:
    emulator.state.add_invalid_token(TOKEN)


def _unknown_pixel(emulator: Emulator) -> None:
    emulator.state.add_unknown_pixel(PIXEL)


def _throttled(emulator: Emulator) -> None:
    emulator.state.add_fault("rate_limit_17", pixel_id=PIXEL, retry_minutes=5)


@pytest.mark.parametrize(
    ("arrange", "expected"),
    [
        (_bad_token, ["Meta refused the access token (code 190/467", "--access-token"]),
        (_unknown_pixel, [f"Meta knows no pixel {PIXEL}", "code 100/33", "--pixel-id"]),
        (_throttled, ["Meta is throttling this pixel (code 17", "try again in about 5 min"]),
    ],
    ids=["bad-token", "wrong-pixel", "throttled"],
)
def test_verify_says_what_meta_refused_and_the_fix(
    database: str, emulator: Emulator, arrange: Callable[[Emulator], None], expected: list[str]
) -> None:
    tenant_id = tenant_on_emulator(database, emulator)
    arrange(emulator)
    result = tenants(database, "verify", tenant_id, "--test-event-code", "TEST1")
    assert result.exit_code == 1, result.output
    for text in expected:
        assert text in result.output, result.output
    assert "fbtrace_id" in result.output
    assert TOKEN not in result.output
    assert emulator.state.events(PIXEL) == []


def test_verify_without_a_code_or_credentials_says_what_to_give(
    database: str, emulator: Emulator
) -> None:
    tenant_id = str(uuid.uuid4())
    assert tenants(database, "add", "--name", "Bare", "--id", tenant_id).exit_code == 0
    bare = tenants(database, "verify", tenant_id, "--test-event-code", "T1")
    assert bare.exit_code == 1 and "capi tenants set-meta" in bare.output, bare.output
    tenant_id = tenant_on_emulator(database, emulator)
    no_code = tenants(database, "verify", tenant_id)
    assert no_code.exit_code == 2 and "--test-event-code" in no_code.output, no_code.output


def test_set_meta_graph_url_is_validated_and_can_be_reset(database: str) -> None:
    tenant_id = str(uuid.uuid4())
    assert tenants(database, "add", "--name", "G", "--id", tenant_id).exit_code == 0
    base = ("set-meta", tenant_id, "--pixel-id", PIXEL, "--access-token", TOKEN)
    bad = tenants(database, *base, "--graph-url", "ftp://example.com")
    assert bad.exit_code == 2 and "http(s) URL" in bad.output, bad.output
    reset = tenants(database, *base, "--graph-url", "")
    assert reset.exit_code == 0 and "META_GRAPH_URL (the default)" in reset.output


def test_the_emulator_answers_meta_s_unknown_object_error_for_a_pixel_it_was_told_of(
    emulator: Emulator,
) -> None:
    added = httpx.post(f"{emulator.base_url}/_emulator/unknown-pixels", json={"pixel_id": PIXEL})
    assert added.status_code == 201, added.text
    answer = httpx.post(
        emulator.events_url(PIXEL),
        json={"data": [make_event()], "access_token": TOKEN},
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["error_subcode"], error["type"]) == (
        100,
        33,
        "GraphMethodException",
    )
    assert f"Object with ID '{PIXEL}' does not exist" in error["message"]
    assert error["fbtrace_id"]
    other = httpx.post(
        emulator.events_url("999"), json={"data": [make_event()], "access_token": TOKEN}
    )
    assert other.status_code == 200, other.text
