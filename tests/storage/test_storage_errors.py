"""``storage.errors.map_db_errors``: every SQLAlchemy failure becomes
``DependencyUnavailableError`` raised from it; anything else passes through unchanged."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError, ResourceClosedError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from capi_stream.errors import DependencyUnavailableError, SecretsKeyError
from storage.errors import map_db_errors


class DriverLockedError(Exception):
    """Stands for a DB-API driver's own exception class (e.g. sqlite3.OperationalError)."""


@pytest.mark.parametrize(
    ("raised", "message"),
    [
        (OperationalError("SELECT 1", {}, DriverLockedError("locked")), "w: DriverLockedError"),
        (IntegrityError("INSERT", {}, DriverLockedError("dup")), "w: DriverLockedError"),
        (PoolTimeoutError("QueuePool limit reached"), "w: TimeoutError"),
        (ResourceClosedError("closed"), "w: ResourceClosedError"),
    ],
    ids=["connection", "integrity", "pool-timeout", "other-sqlalchemy"],
)
def test_a_sqlalchemy_failure_becomes_dependency_unavailable_from_the_original(
    raised: Exception, message: str
) -> None:
    with pytest.raises(DependencyUnavailableError) as caught, map_db_errors("w"):
        raise raised

    assert str(caught.value) == message
    assert caught.value.__cause__ is raised


def test_errors_that_are_not_the_database_s_pass_through_unchanged() -> None:
    error = SecretsKeyError("CAPI_SECRETS_KEY is not set")
    with pytest.raises(SecretsKeyError) as caught, map_db_errors():
        raise error
    assert caught.value is error
    with pytest.raises(ValueError, match="a bug"), map_db_errors():
        raise ValueError("a bug")
