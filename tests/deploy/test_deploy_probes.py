"""The Kubernetes probes and Prometheus annotations point at routes the processes serve.

The webhook app is the real one (real broker, real database); the worker's health server is
the real ``HealthServer`` with the real ``WorkerMetrics`` behind ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames
from consumers.health import HealthProbes, HealthServer
from consumers.metrics import WorkerMetrics
from tests.deploy.test_deploy_manifests import container, load_all, pod_spec
from tests.support.webhook_fixtures import AppHarness, test_runtime

MANIFESTS = load_all()


def http_paths(name: str) -> dict[str, str]:
    """Probe or scrape -> path, of the Deployment ``name``."""
    spec = container(MANIFESTS, name)
    paths = {probe: spec[probe]["httpGet"]["path"] for probe in ("readinessProbe", "livenessProbe")}
    annotations = MANIFESTS[("Deployment", name)]["spec"]["template"]["metadata"]["annotations"]
    paths["scrape"] = annotations["prometheus.io/path"]
    return paths


def named_port(name: str, port_name: str) -> int:
    ports: list[dict[str, Any]] = container(MANIFESTS, name)["ports"]
    return next(int(p["containerPort"]) for p in ports if p["name"] == port_name)


@pytest.fixture
def webhook_app(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    db_engine: Engine,
    session_factory: sessionmaker[Session],
) -> Iterator[AppHarness]:
    runtime = test_runtime(kafka_config, topic_names, db_engine, session_factory)
    with AppHarness(runtime) as app:
        yield app


def test_webhook_probes_and_scrape_path_are_served(webhook_app: AppHarness) -> None:
    for use, path in http_paths("capi-webhook").items():
        response = webhook_app.get(path)
        assert response.status_code == 200, (use, path, response.text)
    scraped = webhook_app.get(http_paths("capi-webhook")["scrape"]).text
    assert "capi_webhook_ready 1.0" in scraped  # the readiness probe above set it


def test_webhook_listens_on_the_probed_port() -> None:
    args = container(MANIFESTS, "capi-webhook")["args"]
    annotations = MANIFESTS[("Deployment", "capi-webhook")]["spec"]["template"]["metadata"]
    port = named_port("capi-webhook", "http")
    assert args[args.index("--port") + 1] == str(port)
    assert annotations["annotations"]["prometheus.io/port"] == str(port)


def test_worker_probes_and_scrape_path_are_served() -> None:
    metrics = WorkerMetrics()
    probes = HealthProbes(
        lambda: (True, "loop turning"), lambda: (True, "1 partitions"), metrics.render
    )
    server = HealthServer(probes, "127.0.0.1", 0).start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as client:
            for use, path in http_paths("capi-worker").items():
                assert client.get(path).status_code == 200, (use, path)
            assert "capi_worker_consumer_lag" in client.get("/metrics").text
    finally:
        server.stop()


def test_worker_metrics_port_is_the_probed_port() -> None:
    port = named_port("capi-worker", "metrics")
    env = {e["name"]: e.get("value") for e in container(MANIFESTS, "capi-worker")["env"]}
    config = MANIFESTS[("ConfigMap", "capi-config")]["data"]
    assert int(env.get("WORKER_METRICS_PORT") or config["WORKER_METRICS_PORT"]) == port
    template = MANIFESTS[("Deployment", "capi-worker")]["spec"]["template"]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert pod_spec(MANIFESTS[("Deployment", "capi-worker")])["containers"][0]["ports"]
