"""One owner per librdkafka client: build it, watch it, replace it when it is beyond saving.

librdkafka marks a client unusable after a fatal error (``KafkaError.fatal()`` in
``error_cb`` or on a delivery report; ``_FATAL`` from a call), and nothing brings it back.
An idempotent producer can also spin without ever delivering: after a memory broker
restart it answers UNKNOWN_PRODUCER_ID by bumping its epoch dozens of times a second and
every record times out. A fresh instance works at once in both cases. So, as Karafka's
WaterDrop does (``reload_on_idempotent_fatal_error``): report the error, discard the
client, build a fresh one after a full-jitter backoff (the first rebuild at once), reset
the count on the first success, and give up past a bound so an orchestrator restarts the
process. A delivery that timed out is of unknown fate: it condemns the client too (a
rebuild is cheap and cures a client stuck in a loop we do not recognise).

Callbacks arrive on whichever thread polls the client; the owner replaces the client only
at a point of its own choosing (``recover``), on the thread that uses it. State is read by
health probes from other threads, hence the lock.
"""

from __future__ import annotations

import enum
import json
import logging
import random
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from confluent_kafka import KafkaError

__all__ = ["ClientLifecycle", "ClientState", "ClientStatus", "RecoveryPolicy"]

logger = logging.getLogger(__name__)

ClientT = TypeVar("ClientT")

# Delivery errors that leave a record's fate unknown and the client suspect.
_SUSPECT_CODES = frozenset({KafkaError._MSG_TIMED_OUT, KafkaError._FATAL})
# Our own purge of a discarded client: expected, says nothing about the new one.
_PURGED_CODES = frozenset({KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT})


class ClientState(enum.Enum):
    """Where a client is in its life; only ``STARTING`` and ``OK`` count as ready."""

    STARTING = "starting"  # built, nothing delivered yet
    OK = "ok"  # the last outcome was a success
    RECOVERING = "recovering"  # condemned: to be replaced at the next ``recover``
    GAVE_UP = "gave up"  # replaced too often without a success: the process must exit


_USABLE = frozenset({ClientState.STARTING, ClientState.OK})


@dataclass(frozen=True, slots=True)
class RecoveryPolicy:
    """How a condemned client is replaced, and when replacing it stops making sense.

    ``give_up_after_seconds``: unhealthy (condemned, rebuilt, never a success since) for
    this long means the process cannot help itself; it exits for its orchestrator.
    ``epoch_storm``: idempotent producer epoch bumps within one statistics interval that
    mean a client stuck re-initialising (a healthy one bumps it almost never).
    """

    backoff_base_seconds: float = 0.5
    backoff_cap_seconds: float = 5.0
    give_up_after_seconds: float = 300.0
    epoch_storm: int = 10
    stats_interval_ms: int = 1000


@dataclass(frozen=True, slots=True)
class ClientStatus:
    """A snapshot for health probes and logs."""

    state: ClientState
    detail: str
    rebuilds: int

    @property
    def ready(self) -> bool:
        return self.state in _USABLE


class ClientLifecycle(Generic[ClientT]):
    """Owns one client of kind ``name`` built by ``build(config)``; see the module docstring.

    ``watch_epoch`` (idempotent producers) turns on librdkafka statistics to spot an epoch
    storm. ``dispose`` is called with a replaced client (purge it, close it).
    """

    def __init__(
        self,
        name: str,
        build: Callable[[dict[str, Any]], ClientT],
        config: dict[str, Any],
        *,
        dispose: Callable[[ClientT], None] = lambda _client: None,
        policy: RecoveryPolicy | None = None,
        watch_epoch: bool = False,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.name = name
        self.policy = policy or RecoveryPolicy()
        self._build = build
        self._dispose = dispose
        self._clock = clock
        self._rng = rng
        # The client keeps its callbacks: through a weak reference they do not form a cycle,
        # so a dropped owner frees its client (and its broker connections) at once.
        me = weakref.ref(self)
        self._config = {**config, "error_cb": partial(_forward_error, me)}
        if watch_epoch:
            self._config["stats_cb"] = partial(_forward_stats, me)
            self._config["statistics.interval.ms"] = self.policy.stats_interval_ms
        self._lock = threading.Lock()
        self._state = ClientState.STARTING
        self._detail = "not used yet"
        self._attempts = 0  # rebuilds since the last success
        self._rebuilds = 0
        self._unhealthy_since: float | None = None
        self._rebuild_at = 0.0
        self._epoch: int | None = None
        self.client: ClientT = build(self._config)

    # -- signals (any thread) ------------------------------------------------------------
    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self.condemn(f"fatal error: {error.str()}")
        else:  # transport errors and the like: librdkafka retries them itself
            logger.debug("%s: %s", self.name, error.str())

    def _on_stats(self, stats: str) -> None:
        try:
            epoch = int(json.loads(stats)["eos"]["producer_epoch"])
        except (ValueError, KeyError, TypeError):
            return
        previous, self._epoch = self._epoch, epoch
        if previous is not None and epoch - previous >= self.policy.epoch_storm:
            self.condemn(f"idempotent producer stuck: epoch {previous} -> {epoch} in one interval")

    def note_delivery(self, error: KafkaError | None) -> None:
        """A delivery report's outcome (or, for a consumer, a fetched record's)."""
        if error is None:
            self.note_success()
        elif error.code() in _PURGED_CODES:
            return
        elif error.fatal() or error.code() in _SUSPECT_CODES:
            self.condemn(f"delivery failed: {error.str()}")
        # Any other error is about that record (too large, unknown topic), not the client.

    def note_exception(self, exc: Exception) -> None:
        """A ``KafkaException`` raised by a call: poll and flush raise a fatal error even
        with an ``error_cb`` set; anything raised there leaves the client suspect."""
        error = exc.args[0] if exc.args else None
        text = error.str() if isinstance(error, KafkaError) else str(exc)
        self.condemn(f"client call failed: {text}")

    def note_success(self) -> None:
        if self._state is ClientState.OK:  # the common case, once per delivery: no lock
            return
        with self._lock:
            if self._state in (ClientState.RECOVERING, ClientState.GAVE_UP):
                return  # a late report from the discarded client
            if self._attempts:  # the state was not OK (checked above): this is a recovery
                logger.info("%s recovered after %d rebuild(s)", self.name, self._attempts)
            self._state, self._detail = ClientState.OK, "last outcome: delivered"
            self._attempts = 0
            self._unhealthy_since = None

    def condemn(self, reason: str) -> None:
        """Mark the client for replacement (idempotent while it waits to be replaced)."""
        with self._lock:
            if self._state in (ClientState.RECOVERING, ClientState.GAVE_UP):
                return
            now = self._clock()
            self._state, self._detail = ClientState.RECOVERING, reason
            if self._unhealthy_since is None:
                self._unhealthy_since = now
            cap = min(
                self.policy.backoff_base_seconds * 2 ** max(self._attempts - 1, 0),
                self.policy.backoff_cap_seconds,
            )
            wait = self._rng() * cap if self._attempts else 0.0
            self._rebuild_at = now + wait
        # Reported before the reload so the cause stays visible (WaterDrop does the same).
        logger.error(
            "%s unusable, replacing it",
            self.name,
            extra={"reason": reason, "rebuild_in_s": round(wait, 2), "attempt": self._attempts + 1},
        )

    # -- the owner's side (the thread that uses the client) ------------------------------
    @property
    def condemned(self) -> bool:
        return self._state is ClientState.RECOVERING

    @property
    def gave_up(self) -> bool:
        return self._state is ClientState.GAVE_UP

    def recover(self) -> bool:
        """Replace a condemned client once its backoff has passed; True if usable now.

        False while a replacement waits for its backoff, and once given up (``gave_up``).
        """
        if self._state in _USABLE:  # the common case, on every produce: no lock
            return True
        with self._lock:
            state = self._state
            if state is ClientState.GAVE_UP:
                return False
            if state is not ClientState.RECOVERING:
                return True
            now = self._clock()
            assert self._unhealthy_since is not None
            if now - self._unhealthy_since >= self.policy.give_up_after_seconds:
                self._state = ClientState.GAVE_UP
                self._detail = f"gave up after {self._attempts} rebuild(s): {self._detail}"
                logger.critical("%s: %s", self.name, self._detail)
                return False
            if now < self._rebuild_at:
                return False
            old = self.client
            self._epoch = None
        self._dispose(old)
        try:
            fresh = self._build(self._config)
        except Exception as exc:  # bad config is caught at start; this is a resource error
            with self._lock:
                self._attempts += 1
                self._rebuild_at = self._clock() + self.policy.backoff_cap_seconds
            logger.error("%s could not be rebuilt", self.name, extra={"error": str(exc)})
            return False
        with self._lock:
            self.client = fresh
            self._attempts += 1
            self._rebuilds += 1
            self._state = ClientState.STARTING
            self._detail = f"rebuilt ({self._attempts} since the last success)"
        logger.warning("%s rebuilt", self.name, extra={"attempt": self._attempts})
        return True

    def status(self) -> ClientStatus:
        with self._lock:
            return ClientStatus(self._state, self._detail, self._rebuilds)


def _forward_error(owner: weakref.ref[ClientLifecycle[Any]], error: KafkaError) -> None:
    lifecycle = owner()
    if lifecycle is not None:
        lifecycle._on_error(error)


def _forward_stats(owner: weakref.ref[ClientLifecycle[Any]], stats: str) -> None:
    lifecycle = owner()
    if lifecycle is not None:
        lifecycle._on_stats(stats)
