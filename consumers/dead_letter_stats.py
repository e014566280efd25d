"""How many events are dead and how old the oldest is, for the worker's DLQ-age gauges.

The database, not the DLQ topic, is the source: a dead-letter record stays in Kafka until
retention even after a redrive delivered it, while the event's row leaves ``dead`` the
moment it is sent. So ``status = 'dead'`` rows are exactly the dead letters still waiting
for someone. Read on a Prometheus scrape (the health thread), hence cached.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from capi_stream.errors import DependencyUnavailableError
from storage.errors import map_db_errors
from storage.reports import summarize_dead_letters

__all__ = ["DeadLetterStats", "DeadLetterStatsReader"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetterStats:
    """``count`` dead events; ages in seconds (0 when there is none)."""

    count: int
    oldest_age_seconds: float  # since the oldest dead event was dead-lettered
    oldest_event_age_seconds: float  # since its event happened (Meta refuses > 7 days)


class DeadLetterStatsReader:
    """One aggregate query at most every ``cache_seconds``; None while the database is down."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, DeadLetterStats | None] | None = None

    def read(self) -> DeadLetterStats | None:
        with self._lock:  # concurrent scrapes share one query
            now = self._clock()
            if self._cached is None or now - self._cached[0] >= self._cache_seconds:
                self._cached = (now, self._query())
            return self._cached[1]

    def _query(self) -> DeadLetterStats | None:
        try:
            with map_db_errors("dead-letter stats"), self._sessions() as session:
                summary = summarize_dead_letters(session)
        except DependencyUnavailableError as exc:
            cause = type(exc.__cause__).__name__
            logger.warning("dead-letter stats unavailable", extra={"error": cause})
            return None
        now = datetime.now(UTC)
        return DeadLetterStats(
            summary.count,
            _age(now, summary.oldest_dead_lettered_at),
            _age(now, summary.oldest_event_time),
        )


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:  # stored without a zone: the columns hold UTC
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())
