"""HTTP behaviour: limits, media types, outages (503), fuzzing, probes, a real uvicorn server."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.database import build_engine, build_session_factory
from capi_stream.kafka.broker import EmbeddedBroker, find_free_port
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames, ensure_topics
from producers.app import AppOptions, build_app
from tests.support.webhook_fixtures import (
    SOURCES,
    AppHarness,
    chatbot_lead,
    denefits_contract,
    dumps,
    ghl_appointment,
    perspective_form,
    read_topic,
    seed_tenant,
    signed_headers,
    stripe_payment,
    test_runtime,
)


@pytest.fixture
def harness(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    db_engine: Engine,
    session_factory: sessionmaker[Session],
) -> Iterator[AppHarness]:
    runtime = test_runtime(
        kafka_config, topic_names, db_engine, session_factory, webhook_max_body_bytes=4096
    )
    with AppHarness(runtime) as app:
        yield app


@pytest.fixture
def tenant(session_factory: sessionmaker[Session]) -> uuid.UUID:
    return seed_tenant(session_factory)


def test_body_over_the_limit_is_413(
    harness: AppHarness, tenant: uuid.UUID, kafka_config: KafkaConfig, topic_names: TopicNames
) -> None:
    body = stripe_payment("pi_BIG", metadata={"pad": "x" * 5000})
    response = harness.send(tenant, "stripe", body)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "payload_too_large"

    async def chunks() -> object:  # no Content-Length: the limit is enforced while reading
        for _ in range(10):
            yield b"x" * 1000

    streamed = harness._runner.run(
        harness.client.post(
            f"/webhooks/{tenant}/stripe",
            content=chunks(),  # type: ignore[arg-type]
            headers={"content-type": "application/json"},
        )
    )
    assert streamed.status_code == 413
    assert read_topic(kafka_config, topic_names.main) == []


def _valid_body(source: str, unique: str) -> bytes:
    return {
        "chatbot": lambda: chatbot_lead(f"sub-{unique}"),
        "ghl": lambda: ghl_appointment(f"appt_{unique}"),
        "perspective": lambda: perspective_form(f"ct-{unique}"),
        "stripe": lambda: stripe_payment(f"pi_{unique}"),
        "denefits": lambda: denefits_contract(f"DNF-{unique}"),
    }[source]()


# No source's real sender sends these (reference/webhook-sources.md): all declare JSON.
_NOT_JSON = [
    None,  # no Content-Type at all
    "",
    "text/plain",
    "text/plain; charset=utf-8",
    "application/json; charset=latin-1",
    "application/json; charset=ISO-8859-1",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "text/xml",
    "application/octet-stream",
    "text/json",
]


_DECLARED_JSON = [
    "application/json",
    "application/json; charset=utf-8",  # Stripe's
    'Application/JSON;charset="UTF-8"',
    "application/vnd.api+json",
]


# One test per source (each type in a loop): a database per case would cost minutes.
@pytest.mark.parametrize("source", SOURCES)
def test_only_utf8_json_bodies_are_accepted(
    harness: AppHarness,
    tenant: uuid.UUID,
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    source: str,
) -> None:
    for content_type in _NOT_JSON:
        body = _valid_body(source, uuid.uuid4().hex[:12])
        headers = {k: v for k, v in signed_headers(source, body).items() if k != "content-type"}
        if content_type is not None:
            headers["content-type"] = content_type
        response = harness.post(tenant, source, body, headers)
        assert response.status_code == 415, content_type
        assert response.json()["error"]["type"] == "unsupported_media_type", content_type
    assert read_topic(kafka_config, topic_names.main) == []
    for content_type in _DECLARED_JSON:
        body = _valid_body(source, uuid.uuid4().hex[:12])
        headers = {**signed_headers(source, body), "content-type": content_type}
        assert harness.post(tenant, source, body, headers).status_code == 202, content_type
    assert len(read_topic(kafka_config, topic_names.main)) == len(_DECLARED_JSON)


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{not json", 400), (b"[1, 2]", 400), (dumps({"event_type": "dm_qualified"}), 422)],
)
def test_bad_bodies_are_4xx(
    harness: AppHarness, tenant: uuid.UUID, body: bytes, status: int
) -> None:
    response = harness.send(tenant, "chatbot", body)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"type", "message"}


@pytest.mark.parametrize(
    ("source", "body"),
    [
        ("chatbot", chatbot_lead("sub-\ud800")),  # the source's own id: it names the event id
        ("chatbot", chatbot_lead("sub-1", email="jane\udfff@example.com")),
        ("perspective", perspective_form("ct-1", email="jane@example.com\ud83d")),
    ],
)
def test_a_lone_surrogate_escape_is_4xx(
    harness: AppHarness,
    tenant: uuid.UUID,
    source: str,
    body: bytes,
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
) -> None:
    # JSON's "\ud800" escape decodes to a lone surrogate, which has no UTF-8 form.
    assert b"\\ud" in body
    response = harness.send(tenant, source, body)
    assert 400 <= response.status_code < 500, response.text
    assert read_topic(kafka_config, topic_names.main, timeout=1) == []


# Text no column can hold: JSON escapes that decode to a lone surrogate, or to NUL.
_ODD_TEXT = st.sampled_from(["\ud800", "id-\udfff", "\x00", "a\x00b"])
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | _ODD_TEXT,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
_TEXT = st.text(max_size=300) | st.integers() | st.none() | _ODD_TEXT
_CHATBOT = st.fixed_dictionaries(
    {
        "event_type": st.sampled_from(["dm_qualified", "link_sent"]) | _TEXT,
        "subscriber": st.fixed_dictionaries(
            {"id": _TEXT, "email": _TEXT, "phone": _TEXT, "custom_fields": _JSON}
        ),
    }
)
_BODIES = st.binary(max_size=300) | _JSON.map(dumps) | _CHATBOT.map(dumps)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(source=st.sampled_from(SOURCES), body=_BODIES)
@example(source="denefits", body=b'{"event_type":"\\ud800"}')  # echoed in the ignored reason
def test_fuzzed_bodies_never_get_a_5xx(
    harness: AppHarness, tenant: uuid.UUID, source: str, body: bytes
) -> None:
    response = harness.send(tenant, source, body)
    assert response.status_code < 500, response.text


def _leaf_paths(node: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    if isinstance(node, dict):
        return [p for key, value in node.items() for p in _leaf_paths(value, (*path, key))]
    if isinstance(node, list):
        return [p for i, value in enumerate(node) for p in _leaf_paths(value, (*path, i))]
    return [path]


def _replaced(node: object, path: tuple[object, ...], value: object) -> object:
    if not path:
        return value
    copy = json.loads(json.dumps(node))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return copy


_VALID_BODIES = {
    "chatbot": chatbot_lead("sub-MUT", fbclid="IwAR_mut", ad_id="120200000001"),
    "ghl": ghl_appointment("appt_MUT"),
    "perspective": perspective_form("ct-MUT", fbclid="IwAR_mut"),
    "stripe": stripe_payment("pi_MUT"),
    "denefits": denefits_contract("DNF-MUT"),
}
_ODD_VALUES: st.SearchStrategy[object] = (
    st.sampled_from([None, "", " ", True, 0, -1, 2**64, 10**30, 1.5, -0.0, 1e308, [], {}, [1]])
    | _ODD_TEXT
    | st.text(min_size=600, max_size=700)
    | st.integers()
    | st.text(max_size=20)
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(source=st.sampled_from(SOURCES), data=st.data())
def test_any_one_field_of_a_real_payload_made_odd_never_gets_a_5xx(
    harness: AppHarness, tenant: uuid.UUID, source: str, data: st.DataObject
) -> None:
    payload = json.loads(_VALID_BODIES[source])
    path = data.draw(st.sampled_from(_leaf_paths(payload)), label="path")
    odd = data.draw(_ODD_VALUES, label="value")
    body = json.dumps(_replaced(payload, path, odd)).encode()
    response = harness.send(tenant, source, body)
    assert response.status_code < 500, response.text


def test_probes_metrics_and_openapi(harness: AppHarness, tenant: uuid.UUID) -> None:
    assert harness.send(tenant, "stripe", stripe_payment("pi_METRIC")).status_code == 202
    assert harness.get("/healthz").json() == {"status": "ok"}
    ready = harness.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "broker": "ok", "database": "ok"}
    metrics = harness.get("/metrics")
    assert metrics.status_code == 200
    assert 'capi_webhook_outcomes_total{outcome="accepted",source="stripe",status="202"} 1.0' in (
        metrics.text
    )
    assert "capi_webhook_publish_latency_seconds_count" in metrics.text
    document = harness.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    operation = document["paths"]["/webhooks/{tenant_id}/{source}"]["post"]
    assert {"202", "401", "404", "413", "503"} <= set(operation["responses"])
    assert harness.get("/nope").json()["error"]["type"] == "not_found"


def test_broker_down_is_503_with_retry_after(
    session_factory: sessionmaker[Session], db_engine: Engine, tenant: uuid.UUID
) -> None:
    broker = EmbeddedBroker().start()
    try:
        config = KafkaConfig(bootstrap_servers=broker.bootstrap_servers)
        topics = TopicNames(main=f"down-{uuid.uuid4().hex[:8]}")
        ensure_topics(config.admin_config(), (topics.main,), 1)
        runtime = test_runtime(config, topics, db_engine, session_factory)
        options = AppOptions(publish_timeout_seconds=1.0, readiness_timeout_seconds=0.5)
        with AppHarness(runtime, options) as app:
            broker.stop()
            started = time.monotonic()
            response = app.send(tenant, "stripe", stripe_payment("pi_DOWN", evt_id="evt_DOWN"))
            assert response.status_code == 503
            assert response.headers["retry-after"].isdigit()
            assert response.json()["error"]["type"] == "unavailable"
            assert time.monotonic() - started < 6
            assert app.get("/readyz").status_code == 503
    finally:
        broker.stop()


def test_database_down_is_503(kafka_config: KafkaConfig, topic_names: TopicNames) -> None:
    engine = build_engine(f"postgresql+psycopg://postgres@127.0.0.1:{find_free_port()}/none")
    runtime = test_runtime(kafka_config, topic_names, engine, build_session_factory(engine))
    with AppHarness(runtime) as app:
        response = app.send(uuid.uuid4(), "stripe", stripe_payment("pi_NODB"))
        assert response.status_code == 503
        assert app.get("/readyz").json()["database"] == "unavailable"
    engine.dispose()


def test_real_uvicorn_server(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    db_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant: uuid.UUID,
) -> None:
    app = build_app(test_runtime(kafka_config, topic_names, db_engine, session_factory))
    port = find_free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        body = chatbot_lead("uv-1")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            response = client.post(
                f"/webhooks/{tenant}/chatbot", content=body, headers=signed_headers("chatbot", body)
            )
            assert client.get("/healthz").status_code == 200
        assert response.status_code == 202, response.text
        [record] = read_topic(kafka_config, topic_names.main)
        assert record.event.event_id == json.loads(response.content)["event_id"]
    finally:
        server.should_exit = True
        thread.join(15)
