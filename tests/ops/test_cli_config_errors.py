"""A configuration mistake makes the real `capi` print one or two lines naming the setting
and the fix, and exit 2: never a traceback, never an outage loop, never librdkafka's log."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from capi_stream.database import build_engine
from capi_stream.kafka.broker import find_free_port
from storage.migrate import migrate

CAPI = str(Path(sys.executable).parent / "capi")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def capi(cwd: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")
    }
    env.update(settings)
    return subprocess.run(
        [CAPI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def short_error(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The run failed with exit 2 and at most two lines that hold every ``expected`` text."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr
    return result.stderr


def missing_postgres_db() -> str:
    base = os.environ.get("CAPI_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    return base.rsplit("/", 1)[0] + "/capi_no_such_db"


def migrated_sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ok.db'}"
    engine = build_engine(url)
    migrate(engine)
    engine.dispose()
    return url


@pytest.mark.parametrize("args", [("migrate",), ("tenants", "list"), ("status", "--no-kafka")])
def test_a_database_that_does_not_exist_names_database_url(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = capi(tmp_path, *args, DATABASE_URL=missing_postgres_db())
    short_error(result, "database 'capi_no_such_db' does not exist", "DATABASE_URL=", "createdb")


def test_an_unreachable_database_names_its_address(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{find_free_port()}/test"
    result = capi(tmp_path, "tenants", "list", DATABASE_URL=url)
    short_error(result, "cannot connect to the database", url)


def test_an_unmigrated_database_says_run_capi_migrate(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "empty.db").close()
    result = capi(tmp_path, "tenants", "list", DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    short_error(result, "no tables yet", "run `capi migrate`")


def test_no_database_and_no_stack_creates_nothing(tmp_path: Path) -> None:
    result = capi(tmp_path, "status", "--no-kafka")
    short_error(result, "no database at", "DATABASE_URL unset", "make run")
    assert not (tmp_path / "data").exists(), "a read-only command created a database"


def test_the_worker_refuses_a_missing_database_at_start_instead_of_waiting(
    tmp_path: Path,
) -> None:
    result = capi(
        tmp_path,
        "worker",
        DATABASE_URL=missing_postgres_db(),
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{find_free_port()}",
    )
    short_error(result, "does not exist", "DATABASE_URL=")


def test_an_unreachable_broker_names_its_address_without_librdkafka_lines(
    tmp_path: Path,
) -> None:
    address = f"127.0.0.1:{find_free_port()}"
    result = capi(
        tmp_path, "worker", DATABASE_URL=migrated_sqlite(tmp_path), KAFKA_BOOTSTRAP_SERVERS=address
    )
    short_error(result, f"cannot reach Kafka at {address}", "KAFKA_BOOTSTRAP_SERVERS")
    assert "FAIL" not in result.stderr and "rdkafka" not in result.stderr


def test_a_malformed_setting_is_named(tmp_path: Path) -> None:
    result = capi(tmp_path, "status", "--no-kafka", HTTP_PORT="eighty")
    short_error(result, "setting HTTP_PORT")
