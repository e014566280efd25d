"""The send path's shortcuts give what the plain paths gave: payloads, bodies, requests."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Mapping
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, get_args

import httpx
import orjson
import pytest

from capi_stream.event import ActionSource, MessagingChannel
from meta_capi._narrowing import NarrowingRun
from meta_capi.client import MetaCAPIClient, _serialize
from meta_capi.errors import MetaRetryableError
from meta_capi.server_event import ServerEvent, _jsonable
from tests.support.emulator_fixture import PIXEL_ID, TOKEN, make_event

OPTIONAL: dict[str, list[Any]] = {
    "event_id": ["e-1", "é-☃"],
    "event_source_url": ["https://shop.example.com/ü"],
    "referrer_url": ["https://ref.example.com/"],
    "messaging_channel": list(get_args(MessagingChannel)),
    "opt_out": [False, True],
    "data_processing_options": [(), ("LDU",)],
    "data_processing_options_country": [0, 1],
    "data_processing_options_state": [0, 1000],
}
CUSTOM: list[dict[str, object]] = [
    {},
    {"value": Decimal("149.90"), "currency": "USD", "num_items": 2},
    {"contents": [{"id": "a", "item_price": Decimal("1.5"), "quantity": 3}], "x": ("a", 1)},
    {"nested": {"deep": [Decimal("10"), None, True, 2.5, {"n": Decimal("0.1")}]}},
]


def reference_payload(event: ServerEvent) -> dict[str, object]:
    """``to_payload`` as it was written before its shortcut: build all, then drop None."""
    payload: dict[str, object] = {
        "event_name": event.event_name,
        "event_time": event.event_time,
        "action_source": event.action_source,
        "event_id": event.event_id,
        "event_source_url": event.event_source_url,
        "referrer_url": event.referrer_url,
        "messaging_channel": event.messaging_channel,
        "opt_out": event.opt_out,
        "user_data": {k: list(v) if isinstance(v, list) else v for k, v in event.user_data.items()},
        "custom_data": reference_jsonable(event.custom_data) if event.custom_data else None,
        "data_processing_options": (
            list(event.data_processing_options)
            if event.data_processing_options is not None
            else None
        ),
        "data_processing_options_country": event.data_processing_options_country,
        "data_processing_options_state": event.data_processing_options_state,
    }
    return {k: v for k, v in payload.items() if v is not None}


def reference_jsonable(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, Mapping):
        return {str(k): reference_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [reference_jsonable(v) for v in value]
    return value


def random_event(rng: random.Random) -> ServerEvent:
    fields: dict[str, Any] = {
        name: rng.choice(values) for name, values in OPTIONAL.items() if rng.random() < 0.5
    }
    return ServerEvent(
        event_name=rng.choice(["Purchase", "Lead"]),
        event_time=1_790_000_000 + rng.randrange(1000),
        action_source=rng.choice(list(get_args(ActionSource))),
        user_data=rng.choice([{}, {"em": ["a" * 64, "b" * 64], "ph": ["c" * 64], "fn": "d" * 64}]),
        custom_data=rng.choice(CUSTOM),
        **fields,
    )


def test_payloads_equal_the_reference_with_the_same_key_order() -> None:
    rng = random.Random(13)
    for _ in range(3000):
        event = random_event(rng)
        payload = event.to_payload()
        assert payload == reference_payload(event)
        assert list(payload) == list(reference_payload(event))
        assert json.loads(_serialize(event)) == payload


def test_payloads_do_not_share_lists_with_the_event() -> None:
    event = ServerEvent("Lead", 1, "website", user_data={"em": ["a" * 64]})
    payload = event.to_payload()
    assert isinstance(payload["user_data"], dict)
    payload["user_data"]["em"].append("x")
    assert event.user_data["em"] == ["a" * 64]


@pytest.mark.parametrize(
    "value", [1, 1.5, "s", True, None, Decimal("2.50"), [Decimal("3")], {1: (Decimal("0.5"),)}]
)
def test_jsonable_matches_the_reference(value: object) -> None:
    assert _jsonable(value) == reference_jsonable(value)
    assert type(_jsonable(value)) is type(reference_jsonable(value))


def test_mappings_and_payload_objects_serialize_alike() -> None:
    event = ServerEvent(
        "Purchase", 1, "website", {"em": ["a" * 64]}, custom_data={"value": Decimal("9.99")}
    )
    assert _serialize(event) == _serialize(event.to_payload()) == orjson.dumps(event.to_payload())


class Recorder:
    """A transport that answers like Meta and keeps every request it saw."""

    def __init__(self, answer: httpx.Response | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer
        self.closed = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answer is not None:
            return self.answer
        events = len(json.loads(request.content)["data"])
        return httpx.Response(200, json={"events_received": events, "fbtrace_id": "T"})


def recording_client(recorder: Recorder, **options: Any) -> MetaCAPIClient:
    return MetaCAPIClient(PIXEL_ID, TOKEN, transport=httpx.MockTransport(recorder), **options)


def test_requests_carry_url_headers_and_body_parameters() -> None:
    recorder = Recorder()
    with recording_client(recorder, test_event_code="T1", partner_agent="agent") as client:
        for _ in range(2):  # the prebuilt parts are reused, not consumed
            outcome = client.send_events([make_event(n) for n in range(3)])
            assert outcome.ok and outcome.result.fbtrace_id == "T"
    for request in recorder.requests:
        assert request.method == "POST"
        assert str(request.url) == f"https://graph.facebook.com/v26.0/{PIXEL_ID}/events"
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["User-Agent"].startswith("capi-stream")
        assert request.headers["Host"] == "graph.facebook.com"
        assert request.headers["Content-Length"] == str(len(request.content))
        assert request.extensions["timeout"] == httpx.Timeout(1.5).as_dict()
        body = json.loads(request.content)
        assert body == {
            "data": [
                make_event(n) | {"event_time": body["data"][n]["event_time"]} for n in range(3)
            ],
            "access_token": TOKEN,
            "test_event_code": "T1",
            "partner_agent": "agent",
        }
    assert len(recorder.requests) == 2
    assert TOKEN not in str(vars(client))


def test_optional_body_parameters_are_left_out() -> None:
    recorder = Recorder()
    with recording_client(recorder) as client:
        client.send_event(make_event())
    assert list(json.loads(recorder.requests[0].content)) == ["data", "access_token"]


@pytest.mark.parametrize("content", [b"not json", b"[1]", b'{"events_received": true}'])
def test_a_2xx_answer_that_is_not_a_result_is_an_error(content: bytes) -> None:
    with (
        recording_client(Recorder(httpx.Response(200, content=content))) as client,
        pytest.raises(MetaRetryableError),
    ):
        client.send_event(make_event())


def test_close_closes_the_transport() -> None:
    class Closing(httpx.MockTransport):
        closed = False

        def close(self) -> None:
            self.closed = True

    transport = Closing(Recorder())
    MetaCAPIClient(PIXEL_ID, TOKEN, transport=transport).close()
    assert transport.closed


def test_narrowing_sends_the_bytes_it_was_given() -> None:
    sent: list[list[bytes]] = []

    def post(bodies: list[bytes]) -> Any:
        sent.append(bodies)
        return object()

    bodies = [b"%d" % n for n in range(5)]
    run = NarrowingRun(post, bodies, {}, budget=3)
    run.send([0, 2, 4])
    assert sent == [[b"0", b"2", b"4"]]
    assert run.sent == [0, 2, 4]


def test_the_environments_proxy_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    class Proxy(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
            seen.append(self.path)
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"events_received": 1, "fbtrace_id": "P"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        with MetaCAPIClient(PIXEL_ID, TOKEN, graph_url="http://graph.invalid") as client:
            assert client.send_event(make_event()).fbtrace_id == "P"
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [f"http://graph.invalid/v26.0/{PIXEL_ID}/events"]
