"""Configuration failures as one or two lines naming the setting and the fix.

The CLI's top level hands every exception that escapes a command to ``explain``; a database
or broker that cannot be used because of how it is configured (no such database, no tables,
nothing listening, a malformed URL or setting) becomes a short message instead of a
traceback. Anything else returns None and keeps its traceback: that is a bug to report.
"""

from __future__ import annotations

import re

from pydantic import ValidationError
from sqlalchemy.engine import make_url

from capi_stream.settings import CapiSettings

__all__ = ["describe_kafka_address", "explain"]

# Kafka error codes that mean "nothing usable answers at that address".
_UNREACHABLE = frozenset({"_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_RESOLVE"})


def _settings() -> CapiSettings | None:
    """The settings the failed command used (a running stack's database included)."""
    try:
        from capi_stream.runtime import resolve_settings

        return resolve_settings(CapiSettings())
    except Exception:  # the settings themselves may be what is broken
        return None


def _database_url(settings: CapiSettings | None) -> str:
    if settings is None:
        return "DATABASE_URL"
    try:
        shown = make_url(settings.database_url).render_as_string(hide_password=True)
    except Exception:
        shown = "(unparsable)"
    return f"DATABASE_URL={shown}"


def _explain_database(exc: BaseException, setting: str) -> str | None:
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

    if isinstance(exc, (ArgumentError, NoSuchModuleError)):
        return f"{setting} is not a usable database URL ({exc}); e.g. sqlite:///data/capi.db"
    if not isinstance(exc, DBAPIError):
        return None
    text = str(exc.orig) if exc.orig is not None else str(exc)
    if "no such table" in text or re.search(r'relation "[^"]+" does not exist', text):
        return f"the database has no tables yet ({setting}): run `capi migrate`"
    missing = re.search(r'database "([^"]+)" does not exist', text)
    if missing:
        return (
            f"database {missing.group(1)!r} does not exist ({setting}): create it "
            f"(`createdb {missing.group(1)}`) or point DATABASE_URL at an existing one"
        )
    if "password authentication failed" in text or "role" in text and "does not exist" in text:
        return f"the database refused the login ({setting}): fix the user or password"
    if "unable to open database file" in text:
        return f"cannot open the SQLite file ({setting}): check the path and its folder"
    if exc.connection_invalidated or any(
        marker in text
        for marker in ("Connection refused", "could not connect", "connection failed", "timeout")
    ):
        return (
            f"cannot connect to the database ({setting}): is the server running, "
            "and is DATABASE_URL's host and port right?"
        )
    if not isinstance(exc, OperationalError):
        return None  # an integrity or programming error is a bug: keep its traceback
    first_line = text.strip().splitlines()[0] if text.strip() else type(exc.orig).__name__
    return f"database error: {first_line} ({setting})"


def _explain_kafka(exc: BaseException, settings: CapiSettings | None) -> str | None:
    from confluent_kafka import KafkaError, KafkaException

    if not isinstance(exc, KafkaException) or not exc.args:
        return None
    error = exc.args[0]
    if not isinstance(error, KafkaError):
        return None
    address = settings.kafka_bootstrap_servers if settings else None
    setting = f"KAFKA_BOOTSTRAP_SERVERS={address}" if address else "KAFKA_BOOTSTRAP_SERVERS"
    if error.name() in _UNREACHABLE:
        return (
            f"cannot reach Kafka at {address or 'the configured address'} ({setting}): "
            "is the broker running there? (`make run` starts an embedded one)"
        )
    return f"Kafka refused: {error.str()} ({setting})"


def describe_kafka_address() -> str:
    """Which broker this process uses and the setting that names it, for a failure message."""
    settings = _settings()
    address = settings.kafka_bootstrap_servers if settings else None
    if not address:
        return "no broker configured: set KAFKA_BOOTSTRAP_SERVERS, or start `make run`"
    return f"is the broker at {address} (KAFKA_BOOTSTRAP_SERVERS) running?"


def _explain_settings(exc: ValidationError) -> str:
    lines = []
    for problem in exc.errors()[:2]:
        name = "_".join(str(part) for part in problem["loc"]).upper() or "a setting"
        lines.append(f"setting {name}: {problem['msg']}")
    return "\n".join(lines)


def explain(exc: BaseException) -> str | None:
    """A short ``error: ...`` text for a configuration failure, else None."""
    if isinstance(exc, ValidationError) and exc.title == CapiSettings.__name__:
        return "error: " + _explain_settings(exc)
    from capi_stream.errors import CapiError

    if isinstance(exc, CapiError) and exc.__cause__ is not None:
        exc = exc.__cause__  # ours wraps the library's error, which says what failed
        if not _is_library_error(exc):
            return None
    settings = _settings()
    message = _explain_database(exc, _database_url(settings)) or _explain_kafka(exc, settings)
    return f"error: {message}" if message else None


def _is_library_error(exc: BaseException) -> bool:
    from confluent_kafka import KafkaException
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(exc, (KafkaException, SQLAlchemyError))
