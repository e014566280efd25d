"""docker-compose.kafka.yml: the stack's structure (it cannot be started here: no Docker).

The file is validated against the Compose Specification's JSON schema, vendored as
``tests/fixtures/compose-spec.json`` from github.com/compose-spec/compose-spec
(``schema/compose-spec.json`` at commit 170098ba07d9f53c383a41bfd4c5166b0a4529a6, Apache-2.0),
the schema `docker compose config` itself validates with.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from capi_stream.kafka.topic_specs import TopicSpec, build_topic_specs
from capi_stream.kafka.topics import TopicNames
from capi_stream.settings import CapiSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.kafka.yml"
COMPOSE_SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec.json"
APP_SERVICES = ("migrate", "topic-init", "app", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


def test_the_file_is_valid_under_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    Draft7Validator.check_schema(schema)
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in Draft7Validator(schema).iter_errors(compose)
    ]
    assert errors == []


def test_the_schema_check_catches_a_broken_file(compose: dict[str, Any]) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    broken = {
        **compose,
        "services": {
            **compose["services"],
            "app": {
                **compose["services"]["app"],
                "depends_on": {"kafka": {"condition": "started"}},
                "restart": 3,
            },
        },
    }
    assert len(list(Draft7Validator(schema).iter_errors(broken))) >= 2


def test_every_service_is_there(services: dict[str, Any]) -> None:
    assert {"kafka", "topic-init", "postgres", "migrate", "app", "worker"} <= set(services)


def test_kafka_is_apache_kafka_in_kraft_mode(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "zookeeper" not in COMPOSE.read_text().lower()


def test_worker_is_scalable(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker
    for port in worker.get("ports", []):
        assert ":" not in str(port), "a fixed host port breaks --scale"
    assert worker["command"] == ["worker"]
    seconds = int(re.sub(r"\D", "", worker["stop_grace_period"]))
    assert seconds >= 30  # longer than a batch: SIGTERM finishes it, commits, leaves


@pytest.mark.parametrize("name", ["kafka", "postgres", "app", "worker", "meta-emulator"])
def test_long_running_services_have_health_checks(services: dict[str, Any], name: str) -> None:
    check = services[name]["healthcheck"]
    assert check["test"] and check["interval"] and check["retries"] >= 3


def test_depends_on_uses_conditions(services: dict[str, Any]) -> None:
    expected = {
        "kafka": "service_healthy",
        "topic-init": "service_completed_successfully",
        "migrate": "service_completed_successfully",
    }
    for name in ("app", "worker"):
        depends = services[name]["depends_on"]
        for dependency, condition in expected.items():
            assert depends[dependency]["condition"] == condition, (name, dependency)
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["topic-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for one_shot in ("topic-init", "migrate"):
        assert services[one_shot]["restart"] == "no"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_capi_services_get_their_settings(services: dict[str, Any], name: str) -> None:
    env = services[name]["environment"]
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["META_GRAPH_URL"]
    assert services[name]["build"] == "."


def test_topic_init_runs_capi_topics_with_the_partitions_and_retention(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    init = services["topic-init"]
    assert init["command"] == ["topics"]
    assert init["build"] == "."
    for key, value in init["environment"].items():  # read as the container would
        monkeypatch.setenv(key, str(value))
    settings = CapiSettings()
    names = TopicNames(main=settings.topic_main)
    day = 86_400_000
    assert build_topic_specs(settings) == (
        TopicSpec(names.main, "main", 12, 14 * day),
        *(TopicSpec(name, "retry", 12, 14 * day) for name in names.retries),
        TopicSpec(names.dlq, "dlq", 3, 30 * day),
    )
    assert settings.topic_replication_factor == 1  # one broker
    for name in APP_SERVICES:
        assert services[name]["environment"]["TOPIC_MAIN"] == names.main


def test_dockerfile_installs_with_constraints() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "pip install -c constraints.txt ." in dockerfile
    assert 'ENTRYPOINT ["capi"]' in dockerfile
