"""Process settings, read once from the environment at the edge (the CLI) and passed down."""

from __future__ import annotations

from typing import Literal

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
    # Only without KAFKA_BOOTSTRAP_SERVERS: "durable" keeps the embedded broker's topics,
    # records and offsets under data_dir/broker; "memory" loses them on any restart.
    embedded_broker_storage: Literal["memory", "durable"] = "durable"

    batch_max_events: int = 1000
    batch_max_wait_seconds: float = 0.5
    dlq_limit_count: int = 100
    dlq_limit_window_seconds: float = 60.0

    webhook_max_body_bytes: int = 256 * 1024
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    worker_metrics_port: int = 9108

    admin_token: SecretStr | None = None
