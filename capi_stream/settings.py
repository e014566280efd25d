"""Process settings, read once from the environment at the edge (the CLI) and passed down.

An unknown setting is an error, not silently ignored, but only where it can only be ours:
a key in ``.env`` (a file read by capi), a keyword given to ``CapiSettings``, or an
environment variable with one of our prefixes (``KAFKA_``, ``META_``, ``CAPI_``...).
Other programs' variables (``PATH``, ``HTTP_PROXY``, Kafka's own ``KAFKA_HEAP_OPTS``) pass.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from capi_stream.errors import UnknownSettingError

DEFAULT_SQLITE_URL = "sqlite:///data/capi.db"
ENV_FILE = ".env"

# Environment variables with these prefixes are taken to be ours: one that is no field is a
# typo (KAFKA_BOOTSTRAP_SERVER) that would otherwise silently fall back to a default.
OUR_PREFIXES = (
    "CAPI_", "KAFKA_", "META_", "DATABASE_", "SCHEMA_REGISTRY_", "TOPIC_", "RETRY_", "BATCH_",
    "DLQ_", "WEBHOOK_", "WORKER_", "CONSUMER_", "ADMIN_",
)  # fmt: skip
# ...except these, which belong to other programs or to our own test and bench harness.
FOREIGN_PREFIXES = ("CAPI_TEST_", "CAPI_BENCH_")
FOREIGN_NAMES = frozenset(
    {
        "CAPI_KAFKA_BACKEND",  # tests/conftest.py: which broker the suite starts
        # Apache Kafka's own scripts and images read these.
        "KAFKA_OPTS", "KAFKA_HEAP_OPTS", "KAFKA_JMX_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS",
        "KAFKA_LOG4J_OPTS", "KAFKA_GC_LOG_OPTS", "KAFKA_DEBUG", "KAFKA_HOME",
    }
)  # fmt: skip


class CapiSettings(BaseSettings):
    """Everything a `capi` process can be told from its environment.

    Names match the variables users already know (``KAFKA_BOOTSTRAP_SERVERS``,
    ``DATABASE_URL``...), so there is no prefix.
    """

    model_config = SettingsConfigDict(env_file=ENV_FILE, extra="forbid", frozen=True)

    kafka_bootstrap_servers: str | None = Field(
        default=None, description="Existing Kafka cluster; unset = start the embedded broker."
    )
    schema_registry_url: str | None = Field(
        default=None, description="Confluent Schema Registry; unset = Avro single-object encoding."
    )
    database_url: str = DEFAULT_SQLITE_URL
    data_dir: str = "data"

    meta_graph_url: str = "https://graph.facebook.com"
    meta_api_version: str = "v26.0"
    meta_timeout_seconds: float = 1.5
    meta_partner_agent: str = "capi-stream"

    topic_main: str = "capi.events"
    retry_delays_seconds: list[float] = Field(default_factory=lambda: [60.0, 300.0, 1800.0, 7200.0])
    topic_partitions: int = 6

    consumer_group: str = "capi-worker"
    # Tansu accepts < 6000 ms; Apache Kafka rejects it (group.min.session.timeout.ms).
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 1_000
    kafka_fetch_wait_max_ms: int = 100
    kafka_max_poll_interval_ms: int = 300_000
    kafka_extra: dict[str, str] = Field(default_factory=dict)

    batch_max_events: int = 1000
    batch_max_wait_seconds: float = 0.5
    dlq_limit_count: int = 100
    dlq_limit_window_seconds: float = 60.0

    webhook_max_body_bytes: int = 256 * 1024
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    worker_metrics_port: int = 9108

    admin_token: SecretStr | None = None
    # Fernet keys, comma-separated: the first encrypts, all decrypt (rotation).
    capi_secrets_key: SecretStr | None = None
    # Other programs' variables that carry one of our prefixes (DATABASE_HOST of a sidecar...),
    # comma-separated: the unknown-setting check lets them pass.
    capi_foreign_env: str = ""

    @field_validator("kafka_extra", mode="before")
    @classmethod
    def _refuse_guarantee_keys(cls, value: Any) -> Any:
        from capi_stream.kafka.config import check_passthrough  # kafka.config imports us

        if isinstance(value, Mapping):
            check_passthrough(str(key) for key in value)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The check runs first, so a typo fails with our message before pydantic's.
        return (
            _UnknownSettingsCheck(settings_cls),
            init_settings,
            env_settings,
            dotenv_settings,
            file_secret_settings,
        )


class _UnknownSettingsCheck(PydanticBaseSettingsSource):
    """A source that contributes nothing and raises on an unknown setting of ours."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        fields = frozenset(name.upper() for name in self.settings_cls.model_fields)
        env_file = self.config.get("env_file")
        if isinstance(env_file, str) and Path(env_file).is_file():
            check_dotenv_keys(dotenv_values(env_file), fields, env_file)
        check_environment(os.environ, fields)
        return {}


def check_environment(environ: Mapping[str, str], fields: Iterable[str]) -> None:
    """Fail on an environment variable that looks like ours (by prefix) but is no setting.

    Raises:
        UnknownSettingError: names the variable and the closest setting.
    """
    known = frozenset(fields)
    declared = environ.get("CAPI_FOREIGN_ENV", "").upper().split(",")
    foreign = FOREIGN_NAMES | {name.strip() for name in declared if name.strip()}
    for name in sorted(environ):
        upper = name.upper()
        if upper in known or upper in foreign or upper.startswith(FOREIGN_PREFIXES):
            continue
        if upper.startswith(OUR_PREFIXES):
            raise UnknownSettingError(name, "the environment", suggest_setting(upper, known))


def check_dotenv_keys(values: Mapping[str, Any], fields: Iterable[str], path: str) -> None:
    """Fail on any key of a ``.env`` file that is no setting: capi reads that file whole.

    Raises:
        UnknownSettingError: names the key, the file and the closest setting.
    """
    known = frozenset(fields)
    for name in values:
        if name.upper() not in known:
            raise UnknownSettingError(name, path, suggest_setting(name.upper(), known))


def suggest_setting(name: str, known: Iterable[str]) -> str | None:
    """The setting ``name`` is most likely a misspelling of, if any is close."""
    matches = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return matches[0] if matches else None
