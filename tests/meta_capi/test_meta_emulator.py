"""The Graph API emulator over real HTTP: Meta's encodings, rules, errors and controls."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence

import httpx
import pytest

from meta_capi.errors import parse_retry_after
from tests.support.emulator_fixture import PIXEL_ID, TOKEN, Emulator, make_event, sha256

NOW = int(time.time())


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def post(
    http: httpx.Client, emulator: Emulator, events: Sequence[object], **extra: object
) -> httpx.Response:
    body: dict[str, object] = {"data": list(events), "access_token": TOKEN, **extra}
    return http.post(emulator.events_url(), json=body)


def error_of(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict)
    assert error["type"] in {"OAuthException", "GraphMethodException"}
    assert error["fbtrace_id"]
    return error


def test_json_success_body(http: httpx.Client, emulator: Emulator) -> None:
    response = post(http, emulator, [make_event(1), make_event(2)], test_event_code="TEST1")
    assert response.status_code == 200
    body = response.json()
    assert body["events_received"] == 2
    assert body["messages"] == []
    assert isinstance(body["fbtrace_id"], str) and body["fbtrace_id"]
    listed = http.get(f"{emulator.base_url}/_emulator/events", params={"pixel_id": PIXEL_ID}).json()
    assert [e["payload"]["event_id"] for e in listed["events"]] == ["order-1", "order-2"]
    assert {e["test_event_code"] for e in listed["events"]} == {"TEST1"}
    assert all(e["received_at"] >= NOW - 5 for e in listed["events"])


def test_form_encoded_with_json_string_elements(http: httpx.Client, emulator: Emulator) -> None:
    # The Python SDK's wire format: data = JSON array of JSON strings, token in the query.
    data = json.dumps([json.dumps(make_event(1)), make_event(2)])
    response = http.post(emulator.events_url(), params={"access_token": TOKEN}, data={"data": data})
    assert response.status_code == 200, response.text
    assert response.json()["events_received"] == 2


def test_multipart_form(http: httpx.Client, emulator: Emulator) -> None:
    # curl -F 'data=[...]' -F 'access_token=...' as in Meta's docs.
    files = {"data": (None, json.dumps([make_event()])), "access_token": (None, TOKEN)}
    response = http.post(emulator.events_url(), files=files)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("content", "content_type"),
    [(b"{not json", "application/json"), (b"[1, 2]", "application/json"), (b"x", "text/plain")],
)
def test_malformed_body(
    http: httpx.Client, emulator: Emulator, content: bytes, content_type: str
) -> None:
    response = http.post(
        emulator.events_url(),
        params={"access_token": TOKEN},
        content=content,
        headers={"content-type": content_type},
    )
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["error_subcode"]) == (100, 2804019)


def test_missing_and_invalid_token(http: httpx.Client, emulator: Emulator) -> None:
    missing = http.post(emulator.events_url(), json={"data": [make_event()]})
    assert missing.status_code == 400
    assert error_of(missing)["code"] == 104
    added = http.post(f"{emulator.base_url}/_emulator/invalid-tokens", json={"token": "revoked"})
    assert added.status_code == 201
    invalid = http.post(
        emulator.events_url(), json={"data": [make_event()], "access_token": "revoked"}
    )
    error = error_of(invalid)
    assert (error["code"], error["error_subcode"]) == (190, 467)


@pytest.mark.parametrize("version", ["v20.0", "v16.0", "v27.0", "v25.1", "latest"])
def test_unsupported_version(http: httpx.Client, emulator: Emulator, version: str) -> None:
    response = http.post(
        emulator.events_url(version=version), json={"data": [make_event()], "access_token": TOKEN}
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == 2635


@pytest.mark.parametrize("version", ["v21.0", "v24.0", "v26.0"])
def test_supported_versions(http: httpx.Client, emulator: Emulator, version: str) -> None:
    response = http.post(
        emulator.events_url(version=version), json={"data": [make_event()], "access_token": TOKEN}
    )
    assert response.status_code == 200


def test_unknown_pixel_shape(http: httpx.Client, emulator: Emulator) -> None:
    response = http.post(
        emulator.events_url(pixel_id="me"), json={"data": [make_event()], "access_token": TOKEN}
    )
    error = error_of(response)
    assert (error["code"], error["error_subcode"]) == (100, 33)


def test_too_many_events(http: httpx.Client, emulator: Emulator) -> None:
    response = post(http, emulator, [make_event(n) for n in range(1001)])
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == 100
    assert "1000" in str(error["error_user_msg"])
    assert post(http, emulator, [make_event(n) for n in range(1000)]).status_code == 200


def user(**fields: object) -> dict[str, object]:
    return dict(fields)


EM = sha256("a@example.com")
UA = "Mozilla/5.0"
BAD_CASES = [
    # (overrides of a valid website Purchase, subcode, path named in error_user_msg or None)
    ({"event_time": NOW - 7 * 86400 - 120}, 2804003, None),
    ({"event_time": NOW + 3600}, 2804019, "$['data'][0]['event_time']"),
    ({"event_time": str(NOW)}, 2804019, "$['data'][0]['event_time']"),
    ({"custom_data": {"currency": "USD"}}, 2804009, None),
    ({"custom_data": {"value": 10}}, 2804009, None),
    ({"custom_data": None}, 2804009, None),
    ({"custom_data": [1]}, 2804019, "$['data'][0]['custom_data']"),
    ({"custom_data": {"value": "10", "currency": "USD"}}, 2804019, "['value']"),
    ({"custom_data": {"value": 10, "currency": "XYZ"}}, 2804019, "['currency']"),
    ({"action_source": None}, 2804019, "['action_source']"),
    ({"action_source": "web"}, 2804019, "['action_source']"),
    ({"event_source_url": None}, 2804019, "['event_source_url']"),
    ({"user_data": user(em=EM)}, 2804019, "['client_user_agent']"),
    ({"user_data": user(em=EM, client_user_agent=UA, foo="x")}, 2804019, "['user_data']"),
    ({"bogus": 1}, 2804019, "$['data'][0]"),
    (
        {"custom_data": {"value": 1, "currency": "USD", "contents": [{"sku": "1"}]}},
        2804019,
        "['contents'][0]",
    ),
    ({"user_data": user(em="a@example.com", client_user_agent=UA)}, 2804019, "['em']"),
    ({"user_data": user(em=EM.upper(), client_user_agent=UA)}, 2804019, "['em']"),
    ({"user_data": user(em=[EM, "x"], client_user_agent=UA)}, 2804019, "['em']"),
    ({"user_data": user(ph="16505551212", client_user_agent=UA)}, 2804019, "['ph']"),
    ({"user_data": user(country="us", client_user_agent=UA)}, 2804019, "['country']"),
    (
        {"user_data": user(em=EM, client_user_agent=UA, client_ip_address="1.2.3")},
        2804019,
        "['client_ip_address']",
    ),
    ({"user_data": user(em=EM, client_user_agent=UA, fbc="fb.1.1554763741205")}, 2804001, None),
    ({"user_data": user(em=EM, client_user_agent=UA, fbc="IwAR2F4")}, 2804001, None),
    (
        {"user_data": user(em=EM, client_user_agent=UA, fbc="fb.1.1554763741205.fb.1.15547637.x")},
        2804001,
        None,
    ),
    ({"user_data": user(client_user_agent=UA)}, 2804050, None),
    (
        {
            "user_data": user(
                client_user_agent=UA,
                ct=sha256("paris"),
                country=sha256("fr"),
                st=sha256("idf"),
                zp=sha256("75001"),
                ge=sha256("f"),
            )
        },
        2804050,
        None,
    ),
    ({"user_data": user(client_user_agent=UA, db=sha256("19900101"))}, 2804050, None),
    (
        {"action_source": "email", "user_data": user(fn=sha256("mary"), ge=sha256("f"))},
        2804050,
        None,
    ),
    ({"action_source": "email", "user_data": user(ln=sha256("smith"))}, 2804050, None),
    ({"action_source": "email", "user_data": {}}, 2804050, None),
    ({"action_source": "email", "user_data": None}, 2804019, "['user_data']"),
    ({"action_source": "app", "user_data": user(em=EM)}, 2804019, "['app_data']"),
    ({"data_processing_options": ["LDU"]}, 2804019, "data_processing_options_country"),
]


@pytest.mark.parametrize(("overrides", "subcode", "path"), BAD_CASES)
def test_rules(
    http: httpx.Client,
    emulator: Emulator,
    overrides: dict[str, object],
    subcode: int,
    path: str | None,
) -> None:
    event = make_event()
    for key, value in overrides.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    response = post(http, emulator, [event])
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["code"], error["error_subcode"]) == (100, subcode)
    assert error["is_transient"] is False
    assert error["error_user_title"]
    if path is not None:
        assert path in str(error["error_user_msg"])
    assert emulator.state.events() == []


GOOD_CASES = [
    {"user_data": user(external_id="crm-42", client_user_agent=UA)},
    {"user_data": user(external_id=[sha256("crm-42")], client_user_agent=UA)},
    {"user_data": user(em=EM + ".AQICAQMC", client_user_agent=UA)},
    {"user_data": user(client_user_agent=UA, client_ip_address="2001:db8::1")},
    {"user_data": user(em=EM, client_user_agent=UA, fbc="fb.1.1554763741205.IwAR2F.AQICAQMC")},
    {"user_data": user(client_user_agent=UA, fbp="fb.1.1554763741205.1234567890")},
    {"user_data": user(client_user_agent=UA, fn=sha256("mary"), ln=sha256("smith"))},
    {"custom_data": {"value": 1, "currency": "eur", "my_custom_property": {"a": 1}}},
    {"action_source": "physical_store", "event_time": NOW - 30 * 86400},
    {"event_time": NOW + 30},
    {
        "data_processing_options": ["LDU"],
        "data_processing_options_country": 1,
        "data_processing_options_state": 1000,
    },
    {"data_processing_options": []},
    {
        "action_source": "app",
        "event_source_url": None,
        "app_data": {
            "advertiser_tracking_enabled": 1,
            "application_tracking_enabled": 1,
            "extinfo": ["a2"] + [""] * 15,
        },
    },
    {
        "action_source": "business_messaging",
        "messaging_channel": "whatsapp",
        "user_data": user(whatsapp_business_account_id="123", ctwa_clid="ARAkLkA"),
    },
    {"event_name": "Lead", "custom_data": None, "action_source": "system_generated"},
]


@pytest.mark.parametrize("overrides", GOOD_CASES)
def test_accepted(http: httpx.Client, emulator: Emulator, overrides: dict[str, object]) -> None:
    event = make_event()
    for key, value in overrides.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    response = post(http, emulator, [event])
    assert response.status_code == 200, response.text
    assert len(emulator.state.events(PIXEL_ID)) == 1


@pytest.mark.parametrize(
    ("event_name", "user_data", "subcode"),
    [
        ("Lead", user(page_id="1", page_scoped_user_id="2"), 2804066),
        ("Purchase", user(page_id="1"), 2804019),
    ],
)
def test_business_messaging(
    http: httpx.Client,
    emulator: Emulator,
    event_name: str,
    user_data: dict[str, object],
    subcode: int,
) -> None:
    event = make_event(
        event_name=event_name,
        action_source="business_messaging",
        messaging_channel="messenger",
        user_data=user_data,
    )
    event.pop("event_source_url")
    error = error_of(post(http, emulator, [event]))
    assert (error["code"], error["error_subcode"]) == (100, subcode)


def test_whole_batch_rejected(http: httpx.Client, emulator: Emulator) -> None:
    events = [make_event(n) for n in range(5)]
    events[3]["event_time"] = NOW - 8 * 86400
    response = post(http, emulator, events)
    assert response.status_code == 400
    assert emulator.state.events() == []
    counts = http.get(f"{emulator.base_url}/_emulator/requests").json()["counts"]
    assert counts == {PIXEL_ID: {"rejected:100/2804003": 1}}


def test_unknown_top_level_param(http: httpx.Client, emulator: Emulator) -> None:
    error = error_of(post(http, emulator, [make_event()], dry_run=True))
    assert (error["code"], error["error_subcode"]) == (100, 2804019)
    assert "$['dry_run']" in str(error["error_user_msg"])


@pytest.mark.parametrize("data", [[], "not json", {"a": 1}, [1], ["{"]])
def test_malformed_data(http: httpx.Client, emulator: Emulator, data: object) -> None:
    error = error_of(http.post(emulator.events_url(), json={"data": data, "access_token": TOKEN}))
    assert (error["code"], error["error_subcode"]) == (100, 2804019)


def test_fault_controls_over_http(http: httpx.Client, emulator: Emulator) -> None:
    faults = f"{emulator.base_url}/_emulator/faults"
    created = http.post(
        faults,
        json={"pixel_id": PIXEL_ID, "kind": "rate_limit_80004", "count": 2, "retry_minutes": 4},
    )
    assert created.status_code == 201
    for _ in range(2):
        limited = post(http, emulator, [make_event()])
        assert limited.status_code == 400
        error = error_of(limited)
        assert (error["code"], error["error_subcode"], error["is_transient"]) == (
            80004,
            2446079,
            True,
        )
        assert parse_retry_after(limited.headers) == 240.0
    assert post(http, emulator, [make_event()]).status_code == 200
    # a fault for another pixel does not touch this one
    http.post(faults, json={"pixel_id": "999", "kind": "http_500"})
    assert post(http, emulator, [make_event()]).status_code == 200
    # rate 0 never fires, rate 1 always does
    http.post(faults, json={"kind": "http_503", "rate": 0})
    assert post(http, emulator, [make_event()]).status_code == 200
    http.post(faults, json={"kind": "http_503", "rate": 1})
    down = post(http, emulator, [make_event()])
    assert (down.status_code, down.text) == (503, "Service Unavailable")
    assert http.delete(faults).json() == {"cleared": 3}
    assert post(http, emulator, [make_event()]).status_code == 200
    assert http.post(faults, json={"kind": "meteor"}).status_code == 400
    counts = http.get(f"{emulator.base_url}/_emulator/requests").json()["counts"]
    assert counts[PIXEL_ID] == {"fault:rate_limit_80004": 2, "accepted": 4, "fault:http_503": 1}


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("http_500", 500, 1),
        ("transient_2", 503, 2),
        ("rate_limit_4", 400, 4),
        ("rate_limit_17", 400, 17),
        ("rate_limit_613", 400, 613),
    ],
)
def test_fault_bodies(
    http: httpx.Client, emulator: Emulator, kind: str, status: int, code: int
) -> None:
    emulator.state.add_fault(kind, count=1)  # type: ignore[arg-type]
    response = post(http, emulator, [make_event()])
    assert response.status_code == status
    assert error_of(response)["code"] == code
    if kind.startswith("rate_limit"):
        assert parse_retry_after(response.headers) == 60.0


def test_event_records_reset(http: httpx.Client, emulator: Emulator) -> None:
    post(http, emulator, [make_event()])
    assert len(http.get(f"{emulator.base_url}/_emulator/events").json()["events"]) == 1
    assert http.delete(f"{emulator.base_url}/_emulator/events").status_code == 200
    assert http.get(f"{emulator.base_url}/_emulator/events").json()["events"] == []
    assert http.get(f"{emulator.base_url}/_emulator/requests").json()["counts"] == {}
