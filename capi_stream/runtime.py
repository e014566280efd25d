"""What every `capi` process assembles from its settings: broker address, topics, database.

Without ``KAFKA_BOOTSTRAP_SERVERS`` a command uses the stack a running ``capi dev`` announced
in the user's state folder (``capi_stream.stacks``), from any directory, and that stack's
database unless ``DATABASE_URL`` is set; only ``capi dev`` starts a broker itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import EventCodec, build_codec
from capi_stream.database import build_engine, build_session_factory
from capi_stream.errors import ConfigurationError
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames
from capi_stream.secrets import KEY_FILE_NAME, SecretBox, build_secret_box, read_key_file
from capi_stream.settings import CapiSettings
from capi_stream.stacks import find_stack

DatabaseUse = Literal["check", "create", "lazy"]
NO_CLUSTER = (
    "no Kafka cluster: set KAFKA_BOOTSTRAP_SERVERS, or start the embedded stack with `make run`"
)


@dataclass(frozen=True, slots=True)
class Runtime:
    """Resolved plumbing shared by the commands of one process."""

    settings: CapiSettings
    kafka: KafkaConfig
    topics: TopicNames
    engine: Engine
    sessions: sessionmaker[Session]
    codec: EventCodec


def resolve_settings(settings: CapiSettings) -> CapiSettings:
    """``settings`` with a running stack's broker, database and Graph URL where unset.

    Only when ``KAFKA_BOOTSTRAP_SERVERS`` is unset (the user means the dev stack): a
    configured cluster is never paired with the dev stack's database.

    Raises:
        ConfigurationError: ``CAPI_STACK`` names no running stack, or the choice is ambiguous.
    """
    if settings.kafka_bootstrap_servers:
        return settings
    stack = find_stack(settings)
    if stack is None:
        return settings
    update: dict[str, object] = {"kafka_bootstrap_servers": stack.kafka_bootstrap_servers}
    if "database_url" not in settings.model_fields_set:
        update["database_url"] = stack.database_url
    if "data_dir" not in settings.model_fields_set:
        update["data_dir"] = stack.data_dir  # its secrets key file, among others
    if "meta_graph_url" not in settings.model_fields_set and stack.meta_graph_url:
        update["meta_graph_url"] = stack.meta_graph_url  # the stack's emulator, as its worker
    return settings.model_copy(update=update)


def resolve_bootstrap(settings: CapiSettings) -> str:
    """The cluster to use: the configured one, else the running ``capi dev`` broker.

    Raises:
        ConfigurationError: neither is available.
    """
    bootstrap = resolve_settings(settings).kafka_bootstrap_servers
    if bootstrap:
        return bootstrap
    raise ConfigurationError(NO_CLUSTER)


def require_database(settings: CapiSettings) -> None:
    """Refuse a SQLite file that does not exist instead of silently creating an empty one.

    Raises:
        ConfigurationError: naming DATABASE_URL and the two ways to fix it.
    """
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database or "")
    if not path.exists():
        where = (
            "DATABASE_URL"
            if "database_url" in settings.model_fields_set
            else ("DATABASE_URL unset, so the default")
        )
        raise ConfigurationError(
            f"no database at {path.resolve()} ({where}): start the stack with `make run`, "
            "or set DATABASE_URL to your database (a new one: `capi migrate`)"
        )


def check_database(engine: Engine) -> None:
    """Connect once and find the schema: at start, a database that is missing, unreachable
    or unmigrated is a configuration error (the caller's top level names the setting), not
    an outage to wait out; only a failure after a good start is one.

    Raises:
        ConfigurationError: the database has no tables yet.
        sqlalchemy.exc.DBAPIError: it cannot be reached or does not exist.
    """
    if not inspect(engine).has_table("meta_capi_events"):
        shown = engine.url.render_as_string(hide_password=True)
        raise ConfigurationError(
            f"the database has no tables yet (DATABASE_URL={shown}): run `capi migrate`"
        )


def open_database(settings: CapiSettings, *, create: bool = False) -> Engine:
    """The engine of the configured database (else the running stack's), checked at start.

    Raises:
        ConfigurationError: no such SQLite file (unless ``create``), or no schema in it.
        sqlalchemy.exc.DBAPIError: it cannot be reached or does not exist.
    """
    if not create:
        require_database(settings)
    engine = build_engine(settings.database_url)
    if not create:
        try:
            check_database(engine)
        except BaseException:
            engine.dispose()
            raise
    return engine


def build_runtime(
    settings: CapiSettings,
    bootstrap_servers: str | None = None,
    *,
    database: DatabaseUse = "check",
) -> Runtime:
    """Everything a command needs. ``database``: ``check`` it at start (it must exist and be
    migrated), ``create`` a new SQLite file if needed (``capi dev``), or ``lazy`` for
    commands that may not touch it at all (``capi dlq list``).

    Raises:
        ConfigurationError: no cluster; when checking, no database file or no schema in it.
    """
    if bootstrap_servers is None:
        settings = resolve_settings(settings)
        if not settings.kafka_bootstrap_servers:
            raise ConfigurationError(NO_CLUSTER)
    bootstrap = bootstrap_servers or settings.kafka_bootstrap_servers or ""
    topics = TopicNames(main=settings.topic_main, retry_tiers=len(settings.retry_delays_seconds))
    checked = database == "check"
    engine = open_database(settings) if checked else build_engine(settings.database_url)
    return Runtime(
        settings=settings,
        kafka=KafkaConfig.from_settings(settings, bootstrap),
        topics=topics,
        engine=engine,
        sessions=build_session_factory(engine, build_secrets(settings)),
        codec=build_codec(settings.schema_registry_url, topics.main),
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
