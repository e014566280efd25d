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

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from storage.models import EventStatus, MetaCapiEvent

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
        statement = select(
            func.count(), func.min(MetaCapiEvent.updated_at), func.min(MetaCapiEvent.event_time)
        ).where(MetaCapiEvent.status == EventStatus.DEAD)
        try:
            with self._sessions() as session:
                count, oldest_update, oldest_event = session.execute(statement).one()
        except SQLAlchemyError as exc:
            logger.warning("dead-letter stats unavailable", extra={"error": type(exc).__name__})
            return None
        now = datetime.now(UTC)
        return DeadLetterStats(int(count), _age(now, oldest_update), _age(now, oldest_event))


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:  # stored without a zone: the columns hold UTC
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())
