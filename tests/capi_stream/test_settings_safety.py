"""Configuration cannot switch off at-least-once, and an unknown setting of ours is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from capi_stream.errors import ConfigurationError, UnknownSettingError
from capi_stream.kafka.config import KafkaConfig
from capi_stream.settings import CapiSettings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A working directory without ``.env`` and an environment without our variables."""
    monkeypatch.chdir(tmp_path)
    import os

    for name in list(os.environ):
        if name.upper().startswith(("KAFKA_", "DATABASE_", "META_", "CAPI_", "TOPIC_")):
            monkeypatch.delenv(name)
    return tmp_path


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("acks", "1"),
        ("acks", "all"),  # even the same value: the key is ours, one place sets it
        ("request.required.acks", "0"),
        ("topic.acks", "1"),
        ("enable.idempotence", False),
        ("max.in.flight.requests.per.connection", "50"),
        ("max.in.flight", "50"),
        ("transactional.id", "x"),
        ("enable.auto.commit", True),
        ("Enable.Auto.Commit", "true"),
        ("enable.auto.offset.store", "true"),
        ("isolation.level", "read_uncommitted"),
        ("auto.offset.reset", "latest"),
        ("partition.assignment.strategy", "range"),
        ("group.id", "other"),
        ("bootstrap.servers", "elsewhere:9092"),
        ("session.timeout.ms", "45000"),
    ],
)
def test_kafka_extra_refuses_keys_that_carry_the_guarantees(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: object
) -> None:
    monkeypatch.setenv("KAFKA_EXTRA", json.dumps({"linger.ms": "10", key: value}))
    with pytest.raises(ConfigurationError, match=f"KAFKA_EXTRA may not set '{key}'"):
        CapiSettings()
    # The resolved config refuses them too, however it is built.
    with pytest.raises(ConfigurationError, match=key):
        KafkaConfig("localhost:9092", extra={key: str(value)})


def test_kafka_extra_still_passes_tuning_keys_through(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = {"linger.ms": "20", "compression.type": "zstd", "security.protocol": "SASL_SSL"}
    monkeypatch.setenv("KAFKA_EXTRA", json.dumps(extra))
    config = KafkaConfig.from_settings(CapiSettings(), "localhost:9092")
    producer = config.producer_config()
    consumer = config.consumer_config("group")
    assert producer["linger.ms"] == "20"
    assert producer["compression.type"] == "zstd"
    assert (producer["acks"], producer["enable.idempotence"]) == ("all", True)
    assert (consumer["enable.auto.commit"], consumer["enable.auto.offset.store"]) == (False, False)
    assert consumer["security.protocol"] == "SASL_SSL"


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [
        ("KAFKA_BOOTSTRAP_SERVER", "KAFKA_BOOTSTRAP_SERVERS"),
        ("DATABASE_ULR", "DATABASE_URL"),
        ("META_GRAPH_URI", "META_GRAPH_URL"),
        ("CAPI_SECRET_KEY", "CAPI_SECRETS_KEY"),
        ("BATCH_MAX_EVENT", "BATCH_MAX_EVENTS"),
        ("kafka_extras", "KAFKA_EXTRA"),
        ("WEBHOOK_MAX_BODY", "WEBHOOK_MAX_BODY_BYTES"),
    ],
)
def test_a_misspelt_variable_of_ours_fails_naming_it(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, suggestion: str
) -> None:
    monkeypatch.setenv(variable, "x")
    with pytest.raises(UnknownSettingError) as caught:
        CapiSettings()
    assert caught.value.name == variable
    assert caught.value.suggestion == suggestion
    assert f"unknown setting {variable} in the environment; did you mean {suggestion}?" == str(
        caught.value
    )


@pytest.mark.parametrize(
    "variable",
    [
        "PATH",
        "HTTP_PROXY",
        "HOME",
        "KAFKA_HEAP_OPTS",
        "KAFKA_OPTS",
        "CAPI_TEST_POSTGRES_URL",
        "CAPI_KAFKA_BACKEND",
        "CAPI_BENCH_POSTGRES_URL",
        "PGPASSWORD",
        "DATABASEURL",
    ],
)
def test_other_programs_variables_pass(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "x")
    assert CapiSettings().database_url == "sqlite:///data/capi.db"


def test_foreign_variables_with_our_prefixes_can_be_declared(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_HOST", "sidecar")
    monkeypatch.setenv("META_SIDECAR_TOKEN", "x")
    with pytest.raises(UnknownSettingError, match="DATABASE_HOST"):
        CapiSettings()
    monkeypatch.setenv("CAPI_FOREIGN_ENV", "database_host, META_SIDECAR_TOKEN")
    assert CapiSettings().capi_foreign_env == "database_host, META_SIDECAR_TOKEN"


@pytest.mark.parametrize(
    ("line", "name", "suggestion"),
    [
        ("DATABSE_URL=sqlite:///x.db", "DATABSE_URL", "DATABASE_URL"),
        ("COMPOSE_PROJECT_NAME=capi", "COMPOSE_PROJECT_NAME", None),
        ("kafka_bootstrap_server=x:9092", "kafka_bootstrap_server", "KAFKA_BOOTSTRAP_SERVERS"),
    ],
)
def test_an_unknown_key_in_dotenv_fails_naming_it(
    clean_env: Path, line: str, name: str, suggestion: str | None
) -> None:
    (clean_env / ".env").write_text(f"META_API_VERSION=v26.0\n{line}\n")
    with pytest.raises(UnknownSettingError, match=f"unknown setting {name} in .env") as caught:
        CapiSettings()
    assert caught.value.suggestion == suggestion


def test_dotenv_settings_are_read(clean_env: Path) -> None:
    (clean_env / ".env").write_text("DATABASE_URL=sqlite:///elsewhere.db\nTOPIC_PARTITIONS=3\n")
    settings = CapiSettings()
    assert (settings.database_url, settings.topic_partitions) == ("sqlite:///elsewhere.db", 3)


def test_an_unknown_keyword_fails(clean_env: Path) -> None:
    with pytest.raises(ValueError, match="topic_mian"):
        CapiSettings(topic_mian="x")  # type: ignore[call-arg]


def _deploy_env_names() -> set[str]:
    repo = Path(__file__).resolve().parents[2]
    names = set(yaml.safe_load((repo / "deploy" / "config.yaml").read_text())["data"])
    for manifest in ("webhook.yaml", "worker.yaml", "setup-job.yaml"):
        for document in yaml.safe_load_all((repo / "deploy" / manifest).read_text()):
            template = document.get("spec", {}).get("template", {})
            for container in template.get("spec", {}).get("containers", []):
                names.update(entry["name"] for entry in container.get("env", []))
    compose = yaml.safe_load((repo / "docker-compose.kafka.yml").read_text())
    for service in ("migrate", "app", "worker"):
        names.update(compose["services"][service]["environment"])
    return names


def test_every_variable_the_deploy_files_set_is_a_setting() -> None:
    fields = {name.upper() for name in CapiSettings.model_fields}
    assert _deploy_env_names() - fields == set()
