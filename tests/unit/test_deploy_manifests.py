"""deploy/: the Kubernetes manifests parse and carry the fields operations relies on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MAIN_PARTITIONS = 12  # docker-compose.kafka.yml and the topic runbook create 12


def load_all() -> dict[tuple[str, str], dict[str, Any]]:
    documents: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is None or document.get("kind") == "Kustomization":
                continue
            documents[(document["kind"], document["metadata"]["name"])] = document
    return documents


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    return load_all()


def container(manifests: dict[tuple[str, str], Any], name: str) -> dict[str, Any]:
    spec = manifests[("Deployment", name)]["spec"]["template"]["spec"]
    [only] = spec["containers"]
    found: dict[str, Any] = only
    return found


def test_kustomization_lists_every_file() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_worker_deployment(manifests: dict[tuple[str, str], Any]) -> None:
    pod = manifests[("Deployment", "capi-worker")]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 30  # longer than a batch
    worker = container(manifests, "capi-worker")
    assert worker["args"] == ["worker"]
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    assert ports == {"metrics": 9108}
    assert worker["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(worker["resources"]["requests"])
    assert {"cpu", "memory"} <= set(worker["resources"]["limits"])


def test_webhook_deployment_and_service(manifests: dict[tuple[str, str], Any]) -> None:
    app = container(manifests, "capi-webhook")
    assert app["args"][0] == "serve"
    assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
    service = manifests[("Service", "capi-webhook")]["spec"]
    labels = manifests[("Deployment", "capi-webhook")]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] == "http"


def test_settings_come_from_config_and_secret(manifests: dict[tuple[str, str], Any]) -> None:
    config = manifests[("ConfigMap", "capi-config")]["data"]
    assert {"KAFKA_BOOTSTRAP_SERVERS", "META_GRAPH_URL", "CONSUMER_GROUP"} <= set(config)
    for name in ("capi-worker", "capi-webhook"):
        spec = container(manifests, name)
        assert spec["envFrom"] == [{"configMapRef": {"name": "capi-config"}}]
        database = next(e for e in spec["env"] if e["name"] == "DATABASE_URL")
        assert database["valueFrom"]["secretKeyRef"]["name"] == "capi-database"


def test_keda_scales_on_the_worker_group_lag(manifests: dict[tuple[str, str], Any]) -> None:
    scaled = manifests[("ScaledObject", "capi-worker")]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == "capi-worker"
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= MAIN_PARTITIONS
    [trigger] = spec["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    config = manifests[("ConfigMap", "capi-config")]["data"]
    assert metadata["consumerGroup"] == config["CONSUMER_GROUP"] == "capi-worker"
    assert metadata["topic"] == config["TOPIC_MAIN"] == "capi.events"
    assert metadata["bootstrapServers"] == config["KAFKA_BOOTSTRAP_SERVERS"]
    assert int(metadata["lagThreshold"]) > 0
