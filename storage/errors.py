"""SQLAlchemy's exceptions translated into the project's error tree, in this one place.

Like httpx's ``map_exceptions`` (one mapping per foreign library): every database failure
(connection refused or dropped, pool timeout, a locked SQLite file, any other
``SQLAlchemyError``) becomes ``DependencyUnavailableError``, raised ``from`` the original.
Callers choose what that means for them: the webhook answers 503, the worker pauses and
replays the batch instead of burning the events' attempts, a gauge reads "unknown".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from capi_stream.errors import DependencyUnavailableError

__all__ = ["map_db_errors"]


@contextmanager
def map_db_errors(what: str = "database") -> Iterator[None]:
    """Raise ``DependencyUnavailableError`` for any SQLAlchemy failure inside the block.

    ``what`` names the work in the message (``"tenant lookup failed: OperationalError"``);
    the message carries the driver's exception class, never a query or its parameters.

    Raises:
        DependencyUnavailableError: the database (or its pool) failed.
    """
    try:
        yield
    except (DBAPIError, PoolTimeoutError) as exc:
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        raise DependencyUnavailableError(f"{what}: {type(cause).__name__}") from exc
    except SQLAlchemyError as exc:
        raise DependencyUnavailableError(f"{what}: {type(exc).__name__}") from exc
