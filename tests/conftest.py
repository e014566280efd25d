"""Shared fixtures: a real broker, unique topics and groups, and both databases.

- Kafka: ``KAFKA_BOOTSTRAP_SERVERS`` points the suite at an existing cluster (its client
  timeouts must then be Kafka-legal: set ``CAPI_TEST_SESSION_TIMEOUT_MS`` >= 6000); otherwise
  one embedded Tansu broker runs for the session.
- Databases: every ``db_url`` test runs on SQLite and on PostgreSQL
  (``CAPI_TEST_POSTGRES_URL``, default the local server). PostgreSQL being unreachable is a
  failure, never a skip: the suite must prove both backends.
- Secrets: tenant credentials are sealed at rest; the suite uses one generated key
  (``CAPI_SECRETS_KEY``, exported so the ``capi`` processes tests start read it too).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.database import build_engine, build_session_factory
from capi_stream.kafka.backends import kafka_cluster
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames, ensure_topics
from capi_stream.secrets import SecretBox, build_secret_box, generate_key
from storage.migrate import migrate
from tests.support.emulator_fixture import emulator, emulator_server

__all__ = ["emulator", "emulator_server"]  # shared fixtures, re-exported by name

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# Running `make run` stacks announce themselves in the user's state folder; the suite must
# never find one (a developer's, or a parallel test's), so it gets a folder of its own.
os.environ["CAPI_STATE_DIR"] = tempfile.mkdtemp(prefix="capi-test-stacks-")

TEST_SECRETS_KEY = os.environ.setdefault("CAPI_SECRETS_KEY", generate_key())


def test_secret_box() -> SecretBox:
    """The box of the suite's key, for session factories a test builds itself."""
    box = build_secret_box(TEST_SECRETS_KEY)
    assert box is not None
    return box


test_secret_box.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def kafka_cluster_info(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``(bootstrap, kind)``; see ``capi_stream.kafka.backends`` for how it is chosen."""
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    with kafka_cluster(
        os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        os.environ.get("CAPI_KAFKA_BACKEND"),
        log_path=log_path,
    ) as info:
        yield info


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_cluster_info: tuple[str, str]) -> str:
    return kafka_cluster_info[0]


@pytest.fixture(scope="session")
def kafka_config(kafka_cluster_info: tuple[str, str]) -> KafkaConfig:
    kafka_bootstrap, kind = kafka_cluster_info
    external = kind != "embedded"
    session_ms = int(os.environ.get("CAPI_TEST_SESSION_TIMEOUT_MS", "6000" if external else "2000"))
    return KafkaConfig(
        bootstrap_servers=kafka_bootstrap,
        session_timeout_ms=session_ms,
        heartbeat_interval_ms=min(1000, session_ms // 10),
        fetch_wait_max_ms=20,
    )


@pytest.fixture
def topic_factory(kafka_config: KafkaConfig) -> Callable[..., str]:
    """Create a topic with a unique name and ``partitions`` partitions; returns its name."""

    def create(prefix: str = "t", partitions: int = 3) -> str:
        name = unique_name(prefix)
        ensure_topics(kafka_config.admin_config(), (name,), partitions)
        return name

    return create


@pytest.fixture
def topic_names(kafka_config: KafkaConfig) -> TopicNames:
    """A full unique topic set (main, retry tiers, dead-letter), created."""
    names = TopicNames(main=unique_name("capi.events"))
    ensure_topics(kafka_config.admin_config(), names.all, partitions=3)
    return names


@pytest.fixture
def group_id() -> str:
    return unique_name("group")


def _postgres_schema_url(base_url: str, schema: str) -> str:
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each backend, private to the test."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'capi.db'}"
        engine = build_engine(url)
        migrate(engine)
        engine.dispose()
        yield url
        return
    base = os.environ.get("CAPI_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {base} is unreachable ({exc}); start it, do not skip")
    url = _postgres_schema_url(base, schema)
    engine = build_engine(url)
    migrate(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    engine = build_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(db_engine: Engine) -> sessionmaker[Session]:
    return build_session_factory(db_engine, test_secret_box())
