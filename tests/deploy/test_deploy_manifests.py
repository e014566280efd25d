"""deploy/: the Kubernetes manifests parse and carry the fields operations relies on.

No cluster runs here, so the shape is checked: every file is listed, every pod container
has resources and uses the kustomize-managed image, the rollout order (setup Job before
the Deployments) is enforced by init containers, KEDA alone owns the worker's replicas.
"""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from capi_stream.settings import CapiSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MAIN_PARTITIONS = 12  # docker-compose.kafka.yml and the topic runbook create 12
IMAGE = "capi-stream"  # the name kustomization.yaml's `images:` entry rewrites
POD_KINDS = ("Deployment", "Job")


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


def kustomization(folder: Path = DEPLOY) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return loaded


def pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = document["spec"]["template"]["spec"]
    return spec


def pod_containers(manifests: dict[tuple[str, str], Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(kind/name/container, container)`` of every init and main container of every pod."""
    for (kind, name), document in manifests.items():
        if kind in POD_KINDS:
            spec = pod_spec(document)
            for one in [*spec.get("initContainers", []), *spec["containers"]]:
                yield f"{kind}/{name}/{one['name']}", one


def test_kustomization_lists_every_file() -> None:
    for folder in (DEPLOY, DEPLOY / "prometheus", DEPLOY / "grafana"):
        listed = kustomization(folder).get("resources", [])
        files = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
        assert set(listed) == files, folder
        assert all((folder / name).is_file() for name in listed)
    [dashboard] = kustomization(DEPLOY / "grafana")["configMapGenerator"]
    assert all((DEPLOY / "grafana" / name).is_file() for name in dashboard["files"])


def test_namespace_is_created_and_used() -> None:
    manifests = load_all()
    assert manifests[("Namespace", "capi")]["apiVersion"] == "v1"
    assert kustomization()["namespace"] == "capi"


def test_every_container_uses_the_kustomize_image_at_the_package_version(
    manifests: dict[tuple[str, str], Any],
) -> None:
    [entry] = kustomization()["images"]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert entry == {"name": IMAGE, "newName": IMAGE, "newTag": version}
    images = {where: one["image"] for where, one in pod_containers(manifests)}
    assert images and set(images.values()) == {IMAGE}, images
    for path in DEPLOY.rglob("*.yaml"):
        assert "ghcr.io/example" not in path.read_text(), path


def test_every_pod_container_has_resources_and_runs_as_non_root(
    manifests: dict[tuple[str, str], Any],
) -> None:
    for where, one in pod_containers(manifests):
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(one["resources"][bound]), (where, bound)
        assert one["securityContext"]["allowPrivilegeEscalation"] is False, where
    for (kind, name), document in manifests.items():
        if kind in POD_KINDS:
            assert pod_spec(document)["securityContext"]["runAsNonRoot"] is True, name


def test_probes_name_declared_ports(manifests: dict[tuple[str, str], Any]) -> None:
    for where, one in pod_containers(manifests):
        ports = {p["name"] for p in one.get("ports", [])}
        for probe in ("readinessProbe", "livenessProbe"):
            if probe in one:
                assert one[probe]["httpGet"]["port"] in ports, (where, probe)
    for name in ("capi-webhook", "capi-worker"):
        app = container(manifests, name)
        assert {"readinessProbe", "livenessProbe"} <= set(app), name


def test_setup_job_migrates_first_then_creates_topics(
    manifests: dict[tuple[str, str], Any],
) -> None:
    spec = pod_spec(manifests[("Job", "capi-setup")])
    assert [c["args"] for c in spec["initContainers"]] == [["migrate"]]
    assert [c["args"] for c in spec["containers"]] == [["topics"]]
    assert spec["restartPolicy"] in ("OnFailure", "Never")


@pytest.mark.parametrize("name", ["capi-webhook", "capi-worker"])
def test_deployments_wait_for_the_setup_job(
    manifests: dict[tuple[str, str], Any], name: str
) -> None:
    spec = pod_spec(manifests[("Deployment", name)])
    checks = [c["args"] for c in spec["initContainers"]]
    assert checks == [["migrate", "--check"], ["topics", "--check"]]
    database = spec["initContainers"][0]["env"][0]
    assert database["valueFrom"]["secretKeyRef"]["name"] == "capi-database"
    assert spec["initContainers"][1]["envFrom"] == [{"configMapRef": {"name": "capi-config"}}]


def test_keda_alone_owns_the_worker_replicas(manifests: dict[tuple[str, str], Any]) -> None:
    assert "replicas" not in manifests[("Deployment", "capi-worker")]["spec"]
    assert manifests[("ScaledObject", "capi-worker")]["spec"]["scaleTargetRef"] == {
        "name": "capi-worker"
    }


def test_config_names_only_real_settings(manifests: dict[tuple[str, str], Any]) -> None:
    known = {name.upper() for name in CapiSettings.model_fields}
    config = manifests[("ConfigMap", "capi-config")]["data"]
    assert set(config) <= known, set(config) - known
    env_names = {e["name"] for _where, one in pod_containers(manifests) for e in one.get("env", [])}
    assert env_names <= known, env_names - known
    assert int(config["TOPIC_PARTITIONS"]) == MAIN_PARTITIONS


def test_worker_deployment(manifests: dict[tuple[str, str], Any]) -> None:
    pod = pod_spec(manifests[("Deployment", "capi-worker")])
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


def test_make_image_builds_the_image_kustomize_names() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    dry = subprocess.run(
        ["make", "-n", "image"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert f"docker build -t {IMAGE}:{version} ." in dry
    custom = subprocess.run(
        ["make", "-n", "image", "IMAGE=registry.example/capi:9"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "docker build -t registry.example/capi:9 ." in custom
