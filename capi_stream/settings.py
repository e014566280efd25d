"""Process settings, read once from the environment at the edge (the CLI) and passed down."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite:///data/capi.db"


class CapiSettings(BaseSettings):
    """Everything a `capi` process can be told from its environment.

    Names match the variables users already know (``KAFKA_BOOTSTRAP_SERVERS``,
    ``DATABASE_URL``...), so there is no prefix. Each field's docstring is its description:
    ``docs/operations.md`` renders its settings table from them (``make docs``).
    """

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", frozen=True, use_attribute_docstrings=True
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

    batch_max_events: int = 1000
    """Most records a worker takes per batch."""
    batch_max_wait_seconds: float = 0.5
    """Longest a worker waits to fill a batch."""
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

    def stack_state_dir(self) -> Path:
        """``CAPI_STATE_DIR``, else the XDG base directory spec's place for lasting state."""
        if self.capi_state_dir:
            return Path(self.capi_state_dir)
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(base) / "capi-stream" / "stacks"
