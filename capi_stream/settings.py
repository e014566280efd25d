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
    ``DATABASE_URL``...), so there is no prefix.
    """

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    kafka_bootstrap_servers: str | None = Field(
        default=None, description="Existing Kafka cluster; unset = start the embedded broker."
    )
    schema_registry_url: str | None = Field(
        default=None, description="Confluent Schema Registry; unset = Avro single-object encoding."
    )
    database_url: str = DEFAULT_SQLITE_URL
    data_dir: str = "data"
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
    kafka_log_level: int = Field(
        default=2,
        ge=0,
        le=7,
        description="librdkafka's own log (syslog levels: 3 errors, 6 info, 7 debug); "
        "2 keeps its per-connection FAIL lines off the screen.",
    )

    batch_max_events: int = 1000
    batch_max_wait_seconds: float = 0.5
    dlq_limit_count: int = 100
    dlq_limit_window_seconds: float = 60.0

    webhook_max_body_bytes: int = 256 * 1024
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    worker_metrics_port: int = 9108

    admin_token: SecretStr | None = None

    def stack_state_dir(self) -> Path:
        """``CAPI_STATE_DIR``, else the XDG base directory spec's place for lasting state."""
        if self.capi_state_dir:
            return Path(self.capi_state_dir)
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(base) / "capi-stream" / "stacks"
