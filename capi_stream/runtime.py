"""What every `capi` process assembles from its settings: broker address, topics, database.

Without ``KAFKA_BOOTSTRAP_SERVERS`` a command uses the embedded broker that a running
``capi dev`` announced in ``<data_dir>/dev.json``; only ``capi dev`` starts one itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro_codec import EventCodec, build_codec
from capi_stream.errors import ConfigurationError, SecretsKeyError
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames
from capi_stream.settings import CapiSettings
from storage.engine import build_engine, build_session_factory
from storage.secrets import KEY_FILE_NAME, SecretBox, build_secret_box, read_key_file

DEV_STATE_FILE = "dev.json"


@dataclass(frozen=True, slots=True)
class Runtime:
    """Resolved plumbing shared by the commands of one process."""

    settings: CapiSettings
    kafka: KafkaConfig
    topics: TopicNames
    engine: Engine
    sessions: sessionmaker[Session]
    codec: EventCodec


def dev_state_path(settings: CapiSettings) -> Path:
    return Path(settings.data_dir) / DEV_STATE_FILE


def write_dev_state(settings: CapiSettings, state: dict[str, object]) -> None:
    path = dev_state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2))


def resolve_bootstrap(settings: CapiSettings) -> str:
    """The cluster to use: the configured one, else the running ``capi dev`` broker.

    Raises:
        ConfigurationError: neither is available.
    """
    if settings.kafka_bootstrap_servers:
        return settings.kafka_bootstrap_servers
    path = dev_state_path(settings)
    if path.exists():
        state = json.loads(path.read_text())
        bootstrap = state.get("kafka_bootstrap_servers")
        if isinstance(bootstrap, str):
            return bootstrap
    raise ConfigurationError(
        "no Kafka cluster: set KAFKA_BOOTSTRAP_SERVERS, or start the embedded stack with `make run`"
    )


def secrets_key_path(settings: CapiSettings) -> Path:
    """Where `make run` keeps its generated key (``<data_dir>/secrets.key``)."""
    return Path(settings.data_dir) / KEY_FILE_NAME


def build_secrets(settings: CapiSettings) -> SecretBox | None:
    """The box of ``CAPI_SECRETS_KEY``, else of the key `make run` keeps under the data folder.

    Raises:
        SecretsKeyError: a key is malformed.
    """
    configured = settings.capi_secrets_key
    if configured is not None:
        return build_secret_box(configured.get_secret_value())
    return build_secret_box(read_key_file(secrets_key_path(settings)))


def verify_secrets_key(sessions: sessionmaker[Session]) -> None:
    """At the start of a process: stored credentials exist that its key cannot open?

    An unreachable or unmigrated database is left to the process's own handling (it waits
    or fails on first use); this check only turns a key mistake into an error at once.

    Raises:
        SecretsKeyError: credentials are stored and the key is missing or wrong.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from storage.tenants import check_secrets_key

    try:
        with sessions() as session:
            check_secrets_key(session)
    except SQLAlchemyError:
        return


def build_runtime(settings: CapiSettings, bootstrap_servers: str | None = None) -> Runtime:
    bootstrap = bootstrap_servers or resolve_bootstrap(settings)
    topics = TopicNames(main=settings.topic_main, retry_tiers=len(settings.retry_delays_seconds))
    engine = build_engine(settings.database_url)
    return Runtime(
        settings=settings,
        kafka=KafkaConfig.from_settings(settings, bootstrap),
        topics=topics,
        engine=engine,
        sessions=build_session_factory(engine, build_secrets(settings)),
        codec=build_codec(settings.schema_registry_url, topics.main),
    )


def require_secrets_key(runtime: Runtime) -> None:
    """``verify_secrets_key`` at the start of ``serve`` and ``worker``; frees the engine first
    when it fails, since the process ends there.

    Raises:
        SecretsKeyError: credentials are stored and the key is missing or wrong.
    """
    try:
        verify_secrets_key(runtime.sessions)
    except SecretsKeyError:
        runtime.engine.dispose()
        raise
