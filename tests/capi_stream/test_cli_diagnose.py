"""Which failures the CLI's top level turns into a short configuration message (a table)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from capi_stream.diagnose import explain
from capi_stream.errors import DependencyUnavailableError

URL = "postgresql+psycopg://capi:hunter2@db.internal:5432/capi"


def operational(text: str) -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception(text))


def unreachable_broker() -> DependencyUnavailableError:
    try:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT))
    except KafkaException as exc:
        wrapped = DependencyUnavailableError(f"cannot list topics: {exc}")
        wrapped.__cause__ = exc
        return wrapped


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (operational('FATAL:  database "capi" does not exist'), "database 'capi' does not exist"),
        (operational("no such table: meta_capi_events"), "run `capi migrate`"),
        (ProgrammingError("x", {}, Exception('relation "tenants" does not exist')), "capi migrate"),
        (operational("connection failed: Connection refused"), "cannot connect to the database"),
        (operational('password authentication failed for user "capi"'), "refused the login"),
        (operational("disk I/O error"), "database error: disk I/O error"),
        (unreachable_broker(), "cannot reach Kafka at kafka:9092 (KAFKA_BOOTSTRAP_SERVERS="),
        (IntegrityError("x", {}, Exception("duplicate key")), None),
        (ValueError("a bug"), None),
        (DependencyUnavailableError("no cause"), None),
    ],
    ids=[
        "no-database",
        "unmigrated-sqlite",
        "unmigrated-postgres",
        "unreachable",
        "login",
        "other-operational",
        "broker",
        "integrity-bug",
        "plain-bug",
        "ours-without-cause",
    ],
)
def test_explain(
    monkeypatch: pytest.MonkeyPatch, error: BaseException, expected: str | None
) -> None:
    monkeypatch.setenv("DATABASE_URL", URL)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    message = explain(error)
    if expected is None:
        assert message is None
        return
    assert message is not None and message.startswith("error: ") and expected in message
    assert len(message.splitlines()) <= 2
    assert "hunter2" not in message  # the password never shows
    if "database" in expected or "migrate" in expected or "login" in expected:
        assert "DATABASE_URL=postgresql+psycopg://capi:***@db.internal:5432/capi" in message
