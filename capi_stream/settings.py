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
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from capi_stream.errors import UnknownSettingError
from capi_stream.kafka.guarantees import check_passthrough

DEFAULT_SQLITE_URL = "sqlite:///data/capi.db"
ENV_FILE = ".env"

# Environment variables with these prefixes are taken to be ours: one that is no field is a
# typo (KAFKA_BOOTSTRAP_SERVER) that would otherwise silently fall back to a default.
OUR_PREFIXES = (
    "CAPI_",
    "KAFKA_",
    "META_",
    "DATABASE_",
    "SCHEMA_REGISTRY_",
    "TOPIC_",
    "RETRY_",
    "BATCH_",
    "DLQ_",
    "WEBHOOK_",
    "WORKER_",
    "CONSUMER_",
    "ADMIN_",
)
# ...except these, which belong to other programs or to our own test and bench harness.
FOREIGN_PREFIXES = ("CAPI_TEST_", "CAPI_BENCH_")
FOREIGN_NAMES = frozenset(
    {
        "CAPI_KAFKA_BACKEND",  # tests/conftest.py: which broker the suite starts
        "CAPI_SERVE_APP_OPTIONS",  # capi serve --workers N hands its options to each process
        # Apache Kafka's own scripts and images read these.
        "KAFKA_OPTS",
        "KAFKA_HEAP_OPTS",
        "KAFKA_JMX_OPTS",
        "KAFKA_JVM_PERFORMANCE_OPTS",
        "KAFKA_LOG4J_OPTS",
        "KAFKA_GC_LOG_OPTS",
        "KAFKA_DEBUG",
        "KAFKA_HOME",
    }
)


class CapiSettings(BaseSettings):
    """Everything a `capi` process can be told from its environment.

    Names match the variables users already know (``KAFKA_BOOTSTRAP_SERVERS``,
    ``DATABASE_URL``...), so there is no prefix. Each field's docstring is its description:
    ``docs/operations.md`` renders its settings table from them (``make docs``).
    """

    model_config = SettingsConfigDict(
        env_file=ENV_FILE, extra="forbid", frozen=True, use_attribute_docstrings=True
    )

    kafka_bootstrap_servers: str | None = Field(
        default=None, description="Existing Kafka cluster; unset = start the embedded broker."
    )
    schema_registry_url: str | None = Field(
        default=None, description="Confluent Schema Registry; unset = Avro single-object encoding."
    )
    database_url: str = DEFAULT_SQLITE_URL
    """SQLAlchemy URL of the database (`postgresql+psycopg://user:pass@host/db` in production)."""
    data_dir: str = "data"
    """Local state of the dev stack (`dev.json`, the embedded broker's files)."""
    capi_stack: str | None = Field(
        default=None,
        description="The running `make run` stack to use (the state file it prints); "
        "unset = the one of this data dir, else the only one running.",
    )
    capi_state_dir: str | None = Field(
        default=None,
        description="Where running `make run` stacks announce themselves; unset = "
        "$XDG_STATE_HOME/capi-stream/stacks, else ~/.local/state/capi-stream/stacks.",
    )

    meta_graph_url: str = "https://graph.facebook.com"
    """Graph API base URL; a tenant's own `graph_url` (e.g. the emulator) overrides it."""
    meta_api_version: str = "v26.0"
    """Graph API version of the Conversions API calls."""
    meta_timeout_seconds: float = 1.5
    """Timeout of one Meta request (Meta advises 1.5 s)."""
    meta_partner_agent: str = "capi-stream"
    """`partner_agent` sent with every event."""

    topic_main: str = "capi.events"
    """Main topic; the retry tiers are `<main>.retry.N`, the dead-letter topic `<main>.dlq`."""
    retry_delays_seconds: list[float] = Field(default_factory=lambda: [60.0, 300.0, 1800.0, 7200.0])
    """Delay of each retry tier (JSON list); its length is the number of tiers."""
    topic_partitions: int = 6
    """Partitions of the main topic and the retry tiers (upper bound of useful workers)."""
    topic_retention_ms: int = 1_209_600_000
    """`retention.ms` of the main topic and the retry tiers (`capi topics`; 14 d)."""
    dlq_partitions: int | None = None
    """Partitions of the dead-letter topic (`capi topics`); unset = TOPIC_PARTITIONS."""
    dlq_retention_ms: int = 2_592_000_000
    """`retention.ms` of the dead-letter topic (`capi topics`; 30 d): how long redrive works."""
    topic_replication_factor: int = -1
    """Replicas of a topic `capi topics` creates; -1 = the broker's `default.replication.factor`."""

    consumer_group: str = "capi-worker"
    """Consumer group of the workers (KEDA's ScaledObject must name the same group)."""
    # Tansu accepts < 6000 ms; Apache Kafka rejects it (group.min.session.timeout.ms).
    kafka_session_timeout_ms: int = 10_000
    """`session.timeout.ms` of the consumers (Apache Kafka requires >= 6000)."""
    kafka_heartbeat_interval_ms: int = 1_000
    """`heartbeat.interval.ms` of the consumers."""
    kafka_fetch_wait_max_ms: int = 100
    """`fetch.wait.max.ms` of the consumers."""
    kafka_max_poll_interval_ms: int = 300_000
    """`max.poll.interval.ms`: the longest a batch may take before the member is evicted."""
    kafka_extra: dict[str, str] = Field(default_factory=dict)
    """More librdkafka options as a JSON object (e.g. `security.protocol`, SASL settings)."""
    kafka_log_level: int = Field(
        default=2,
        ge=0,
        le=7,
        description="librdkafka's own log (syslog levels: 3 errors, 6 info, 7 debug); "
        "2 keeps its per-connection FAIL lines off the screen.",
    )
    embedded_broker_storage: Literal["memory", "durable"] = "durable"
    """Only without KAFKA_BOOTSTRAP_SERVERS: `durable` keeps the embedded broker's topics,
    records and offsets under DATA_DIR/broker; `memory` loses them on any restart."""

    batch_max_events: int = 1000
    """Most records a worker takes per batch."""
    batch_max_wait_seconds: float = 0.5
    """Longest a worker waits to fill a batch."""
    worker_max_inflight_batches: int = Field(default=4, ge=1, le=64)
    """Batches a worker finishes at once (upsert, send to Meta, record, forward) while it
    prepares the next; offsets are still committed in batch order. Raise it when Meta's
    latency, not CPU, limits the rate; 1 finishes one batch at a time."""
    worker_max_concurrent_sends: int = Field(default=48, ge=1, le=256)
    """Meta requests a worker keeps open at once, over every tenant of the batches in flight
    (one thread each). With Meta answering in L seconds a worker sends at most about this
    many times the events per request over L: at 200 ms, 16 capped the bench at 3,800
    events/s where 48 reached 6,000, its zero-latency rate."""
    dlq_limit_count: int = 100
    """Dead letters within DLQ_LIMIT_WINDOW_SECONDS that stop the worker (exit code 3)."""
    dlq_limit_window_seconds: float = 60.0
    """Sliding window of the dead-letter limit."""

    webhook_max_body_bytes: int = 256 * 1024
    """Largest webhook body accepted; larger ones are answered 413."""
    http_host: str = "127.0.0.1"
    """Interface `capi serve` listens on (0.0.0.0 in containers)."""
    http_port: int = 8080
    """Port of `capi serve`."""
    worker_metrics_port: int = 9108
    """Port of a worker's `/healthz`, `/readyz` and `/metrics`."""

    admin_token: SecretStr | None = None
    """Reserved for admin routes of the webhook app; no command reads it yet."""

    capi_secrets_key: SecretStr | None = None
    """Fernet keys, comma-separated: the first encrypts, all decrypt (rotation)."""
    capi_foreign_env: str = ""
    """Other programs' variables with one of our prefixes (a sidecar's DATABASE_HOST...),
    comma-separated: the unknown-setting check lets them pass."""

    def stack_state_dir(self) -> Path:
        """``CAPI_STATE_DIR``, else the XDG base directory spec's place for lasting state."""
        if self.capi_state_dir:
            return Path(self.capi_state_dir)
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(base) / "capi-stream" / "stacks"

    @field_validator("kafka_extra", mode="before")
    @classmethod
    def _refuse_guarantee_keys(cls, value: Any) -> Any:
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
