"""MetaCAPIClient against the real emulator over loopback HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from capi_stream.errors import ConfigurationError, PermanentError, RetriableError
from meta_capi.client import MetaCAPIClient
from meta_capi.errors import (
    MetaCredentialsError,
    MetaPermanentError,
    MetaRateLimitedError,
    MetaRetryableError,
    MetaTimeoutError,
)
from tests.support.emulator_fixture import PIXEL_ID, TOKEN, Emulator, make_event, sha256


@pytest.fixture
def client(emulator: Emulator) -> Iterator[MetaCAPIClient]:
    with MetaCAPIClient(
        PIXEL_ID,
        SecretStr(TOKEN),
        graph_url=emulator.base_url,
        test_event_code="TEST123",
        partner_agent="capi-stream",
        # Generous: a 1,000-event request on a loaded CI machine can take seconds;
        # test_timeout builds its own client with a short one.
        timeout_seconds=30.0,
    ) as meta:
        yield meta


class PayloadObject:
    """Stands in for ServerEvent: anything with ``to_payload()``."""

    def __init__(self, payload: dict[str, object]) -> None:
        self.payload = payload

    def to_payload(self) -> dict[str, object]:
        return self.payload


def test_send_event_success(client: MetaCAPIClient, emulator: Emulator) -> None:
    result = client.send_event(make_event())
    assert result.events_received == 1
    assert result.messages == []
    assert result.fbtrace_id
    recorded = emulator.state.events(PIXEL_ID)
    assert len(recorded) == 1
    assert recorded[0].test_event_code == "TEST123"
    assert recorded[0].partner_agent == "capi-stream"
    assert recorded[0].payload["event_id"] == "order-0"


def test_send_event_accepts_payload_objects(client: MetaCAPIClient) -> None:
    assert client.send_event(PayloadObject(make_event())).events_received == 1
    outcome = client.send_events([PayloadObject(make_event(1)), make_event(2)])
    assert outcome.ok and outcome.sent == [0, 1]


def test_token_never_in_url_repr_or_logs(
    client: MetaCAPIClient, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emulator.state.add_invalid_token("bad-token")
    client.send_event(make_event())
    with pytest.raises(MetaPermanentError):
        client.send_event(make_event(event_time=int(time.time()) - 8 * 86400))
    assert TOKEN not in repr(client)
    assert TOKEN not in str(vars(client))
    requests = emulator.state.requests(PIXEL_ID)
    assert requests
    for request in requests:
        assert "access_token" not in request.query_keys
        assert "access_token" in request.body_keys
        assert TOKEN not in request.path
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("overrides", "subcode"),
    [
        ({"event_time": int(time.time()) - 8 * 86400}, 2804003),
        ({"custom_data": {"currency": "USD"}}, 2804009),
        (
            {"action_source": "email", "user_data": {"fn": sha256("mary"), "ge": sha256("f")}},
            2804050,
        ),
        ({"surprise": 1}, 2804019),
        ({"user_data": {"em": "john@example.com", "client_user_agent": "UA"}}, 2804019),
        (
            {"user_data": {"em": sha256("a@b.co"), "client_user_agent": "UA", "fbc": "fb.1"}},
            2804001,
        ),
    ],
)
def test_validation_errors_are_permanent(
    client: MetaCAPIClient, overrides: dict[str, object], subcode: int
) -> None:
    with pytest.raises(MetaPermanentError) as caught:
        client.send_event(make_event(0, **overrides))
    error = caught.value
    assert isinstance(error, PermanentError)
    assert not isinstance(error, MetaCredentialsError)
    assert (error.status_code, error.code, error.error_subcode) == (400, 100, subcode)
    assert error.fbtrace_id
    assert error.classification == "invalid_parameter"


def test_unknown_key_names_the_path(client: MetaCAPIClient) -> None:
    with pytest.raises(MetaPermanentError) as caught:
        client.send_event(make_event(user_data={"em": sha256("x"), "foo": "1"}))
    assert (
        caught.value.error_user_msg == "Unexpected key \"foo\" on param $['data'][0]['user_data']"
    )


def test_invalid_token_is_credentials_error(emulator: Emulator) -> None:
    emulator.state.add_invalid_token("revoked-token")
    with MetaCAPIClient(PIXEL_ID, "revoked-token", graph_url=emulator.base_url) as meta:
        with pytest.raises(MetaCredentialsError) as caught:
            meta.send_event(make_event())
        outcome = meta.send_events([make_event(n) for n in range(5)])
    assert (caught.value.code, caught.value.error_subcode) == (190, 467)
    assert "rotate" in str(caught.value)
    assert "revoked-token" not in str(caught.value)
    assert sorted(outcome.failed) == [0, 1, 2, 3, 4]
    assert all(isinstance(e, MetaCredentialsError) for e in outcome.failed.values())


@pytest.mark.parametrize("kind", ["http_500", "http_503", "transient_2", "http_200_unavailable"])
def test_server_errors_are_retryable(client: MetaCAPIClient, emulator: Emulator, kind: str) -> None:
    emulator.state.add_fault(kind, pixel_id=PIXEL_ID, count=1)  # type: ignore[arg-type]
    with pytest.raises(MetaRetryableError) as caught:
        client.send_event(make_event())
    assert isinstance(caught.value, RetriableError)
    assert not isinstance(caught.value, MetaRateLimitedError)
    assert client.send_event(make_event()).events_received == 1  # count=1: healed


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("rate_limit_4", 4),
        ("rate_limit_17", 17),
        ("rate_limit_613", 613),
        ("rate_limit_80004", 80004),
    ],
)
def test_rate_limit_carries_wait_and_stops_calls(
    client: MetaCAPIClient, emulator: Emulator, kind: str, code: int
) -> None:
    emulator.state.add_fault(kind, pixel_id=PIXEL_ID, count=1, retry_minutes=3)  # type: ignore[arg-type]
    with pytest.raises(MetaRateLimitedError) as caught:
        client.send_event(make_event())
    assert caught.value.code == code
    assert caught.value.retry_after_seconds == 180.0
    before = len(emulator.state.requests(PIXEL_ID))
    # Meta: once limited, stop calling; the client refuses locally until the wait is over.
    with pytest.raises(MetaRateLimitedError) as again:
        client.send_event(make_event())
    assert again.value.classification == "rate_limited_local"
    assert again.value.retry_after_seconds is not None
    assert 170 < again.value.retry_after_seconds <= 180
    assert len(emulator.state.requests(PIXEL_ID)) == before


def test_rate_limit_in_batch_fails_the_rest_without_sending(
    client: MetaCAPIClient, emulator: Emulator
) -> None:
    emulator.state.add_fault("rate_limit_80004", pixel_id=PIXEL_ID, count=1, retry_minutes=1)
    outcome = client.send_events([make_event(n) for n in range(1500)])
    assert outcome.sent == []
    assert len(outcome.failed) == 1500
    assert all(isinstance(e, MetaRateLimitedError) for e in outcome.failed.values())
    assert len(emulator.state.requests(PIXEL_ID)) == 1


def test_timeout(emulator: Emulator) -> None:
    emulator.state.add_fault("slow", pixel_id=PIXEL_ID, count=1, delay_seconds=1.0)
    with (
        MetaCAPIClient(PIXEL_ID, TOKEN, graph_url=emulator.base_url, timeout_seconds=0.2) as meta,
        pytest.raises(MetaTimeoutError) as caught,
    ):
        meta.send_event(make_event())
    assert isinstance(caught.value, RetriableError)
    assert caught.value.classification == "timeout"
    assert caught.value.__cause__ is not None


def test_transport_error_is_retryable() -> None:
    with (
        MetaCAPIClient(PIXEL_ID, TOKEN, graph_url="http://127.0.0.1:9") as meta,
        pytest.raises(MetaRetryableError) as caught,
    ):
        meta.send_event(make_event())
    assert caught.value.classification in {"transport", "timeout"}


def test_batches_of_at_most_1000(client: MetaCAPIClient, emulator: Emulator) -> None:
    outcome = client.send_events([make_event(n) for n in range(2500)])
    assert outcome.ok
    assert outcome.sent == list(range(2500))
    assert outcome.result.events_received == 2500
    assert outcome.result.requests == 3
    assert len(outcome.result.fbtrace_ids) == 3
    requests = emulator.state.requests(PIXEL_ID)
    assert [r.events for r in requests] == [1000, 1000, 500]
    assert len(emulator.state.events(PIXEL_ID)) == 2500


@pytest.mark.parametrize(
    ("bad", "subcode"),
    [
        ({"event_time": int(time.time()) - 8 * 86400}, 2804003),
        ({"custom_data": {"currency": "USD"}}, 2804009),
        ({"user_data": {"em": "plain@example.com", "client_user_agent": "UA"}}, 2804019),
    ],
)
def test_narrowing_isolates_the_bad_event(
    client: MetaCAPIClient, emulator: Emulator, bad: dict[str, object], subcode: int
) -> None:
    events = [make_event(n) for n in range(10)]
    events[6] = make_event(6, **bad)
    outcome = client.send_events(events)
    assert outcome.sent == [0, 1, 2, 3, 4, 5, 7, 8, 9]
    assert list(outcome.failed) == [6]
    assert outcome.failed[6].error_subcode == subcode
    assert outcome.unisolated == frozenset()
    accepted = {e.payload["event_id"] for e in emulator.state.events(PIXEL_ID)}
    assert accepted == {f"order-{n}" for n in range(10) if n != 6}


def test_narrowing_budget(emulator: Emulator) -> None:
    old = {"event_time": int(time.time()) - 8 * 86400}
    events = [make_event(n, **old) if n % 2 else make_event(n) for n in range(16)]
    with MetaCAPIClient(
        PIXEL_ID, TOKEN, graph_url=emulator.base_url, max_narrowing_requests=1
    ) as meta:
        outcome = meta.send_events(events)
    assert outcome.sent == []
    assert len(outcome.failed) == 16
    assert outcome.unisolated == frozenset(range(16))


def test_unserializable_event_fails_alone(client: MetaCAPIClient) -> None:
    outcome = client.send_events(
        [make_event(0), make_event(1, custom_data={"value": float("nan")})]
    )
    assert outcome.sent == [0]
    assert outcome.failed[1].classification == "unserializable"


def test_from_tenant(emulator: Emulator) -> None:
    credentials = {"pixel_id": PIXEL_ID, "capi_access_token": TOKEN, "test_event_code": "T9"}
    with MetaCAPIClient.from_tenant(credentials, graph_url=emulator.base_url) as meta:
        assert meta.test_event_code == "T9"
        assert meta.send_event(make_event()).events_received == 1


@pytest.mark.parametrize(
    ("credentials", "missing"),
    [
        (None, "no Meta integration"),
        ({}, "pixel_id, capi_access_token"),
        ({"pixel_id": PIXEL_ID}, "missing capi_access_token"),
        ({"capi_access_token": TOKEN, "pixel_id": " "}, "missing pixel_id"),
    ],
)
def test_from_tenant_incomplete(credentials: dict[str, object] | None, missing: str) -> None:
    with pytest.raises(ConfigurationError, match=missing):
        MetaCAPIClient.from_tenant(credentials)
