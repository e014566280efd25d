"""Asynchronous delivery on ``ProducerBase``: the asyncio loop serves the delivery reports.

``send()`` never blocks the event loop: while anything is in flight, a timer calls
``poll(0)`` every millisecond and the callbacks resolve each send's future in place. The
records of one loop iteration are produced together, at its end. The same poll fails the
sends whose deadline has passed: one queue in send order (every send has the same
timeout), not a timer per send, which uvloop backs with a libuv handle to open and close.
Everything happens on the event loop's thread: no poll thread to hand the GIL to and to
wake the loop once per delivery report. Use one loop at a time; ``close`` on that loop's
thread or after it has ended, since it runs the callbacks where it is called.

When the producer becomes unusable (fatal error, stuck idempotent producer, a delivery
timed out) its outstanding records are failed at once (their fate is unknown: the caller
answers 503 and the sender retries) and a fresh producer replaces it on this loop. While no
producer is usable every send fails fast. If recovery gives up, ``on_give_up`` is called
once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from capi_stream.errors import DependencyUnavailableError
from capi_stream.kafka.lifecycle import RecoveryPolicy
from capi_stream.kafka.producer import OutgoingRecord, ProducerBase, discard_producer

__all__ = ["EXPIRY_SCAN_MARGIN_SECONDS", "AsyncConfirmedProducer"]

# librdkafka scans for expired messages about once a second; wait that much longer ourselves.
EXPIRY_SCAN_MARGIN_SECONDS = 1.5
# How often the event loop serves delivery reports while any are outstanding; acks take a
# few milliseconds, so this adds at most about a millisecond to a send's latency.
_POLL_INTERVAL_SECONDS = 0.001
# While the producer waits to be replaced, the loop looks again this often (no traffic
# needed: a pod taken out of rotation by its readiness must still heal itself).
_RECOVERY_POLL_SECONDS = 0.05
# With nothing in flight the loop still polls now and then: a fatal error or a stuck
# producer is then noticed (readiness) before the next send, and librdkafka's error and
# statistics events do not pile up.
_IDLE_POLL_SECONDS = 1.0


def _resolve(future: asyncio.Future[None], error: KafkaError | None) -> None:
    if future.done():  # the caller gave up (timeout, cancelled request)
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(DependencyUnavailableError(f"broker did not take the event: {error}"))


def _report(
    note: Callable[[KafkaError | None], None],
    future: asyncio.Future[None],
    error: KafkaError | None,
    _message: Message,
) -> None:
    note(error)
    _resolve(future, error)


class AsyncConfirmedProducer(ProducerBase):
    """``await send(record)`` returns once the broker acknowledged the record.

    ``timeout_seconds`` should match the config's ``message.timeout.ms``: a send fails
    after it (plus librdkafka's expiry scan) even if no report came.
    """

    def __init__(
        self,
        config: dict[str, Any],
        *,
        timeout_seconds: float,
        name: str = "producer",
        policy: RecoveryPolicy | None = None,
        on_give_up: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config, name=name, policy=policy, watch_epoch=True)
        self._timeout = timeout_seconds
        self._on_give_up = on_give_up
        self._gave_up_reported = False
        self._purged: Producer | None = None  # the condemned client already purged
        self._poller: asyncio.TimerHandle | None = None
        self._poller_loop: asyncio.AbstractEventLoop | None = None
        self._outbox: list[tuple[OutgoingRecord, asyncio.Future[None]]] = []
        # (loop time after which the send fails, its future), in send order.
        self._deadlines: deque[tuple[float, asyncio.Future[None]]] = deque()

    async def send(self, record: OutgoingRecord) -> None:
        """Send ``record``; returns once the broker acknowledged it.

        Raises:
            DependencyUnavailableError: refused, timed out, the local queue is full, or the
                producer is being replaced.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._outbox.append((record, future))
        if len(self._outbox) == 1:
            loop.call_soon(self._produce_outbox, loop)
        self._deadlines.append((loop.time() + self._timeout + EXPIRY_SCAN_MARGIN_SECONDS, future))
        await future

    def check_broker(self, timeout: float) -> None:
        """Blocking readiness check (run it in a thread): a usable producer that reaches a broker.

        The producer's own state comes first: a metadata call succeeds against a restarted
        broker while a stuck producer still cannot produce.

        Raises:
            DependencyUnavailableError: the producer is being replaced or gave up, or no
                broker answered within ``timeout`` seconds.
        """
        status = self.lifecycle.status()
        if not status.ready:
            raise DependencyUnavailableError(f"producer {status.state.value}: {status.detail}")
        self._reach_broker(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is still queued (bounded by ``timeout``)."""
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        super().close(timeout)

    def _poll(self) -> None:
        self._poller = None
        self._serve(self._client, 0)
        loop = asyncio.get_running_loop()
        self._expire(loop)
        if self.unusable and not self._recover():  # come back until a fresh one is in place
            self._schedule_poll(loop, _RECOVERY_POLL_SECONDS)
            return
        if len(self._client) or self._deadlines:  # still in flight: come back
            self._schedule_poll(loop)
        else:  # idle: error and statistics events must still be served (and not pile up)
            self._schedule_poll(loop, _IDLE_POLL_SECONDS)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Forget the settled sends at the head of the queue; fail those past their deadline."""
        deadlines, now = self._deadlines, loop.time()
        while deadlines:
            deadline, future = deadlines[0]
            if not future.done():
                if deadline > now and future.get_loop() is loop:
                    return
                if future.get_loop() is loop:  # a send of an ended loop has nobody waiting
                    error = f"event not acknowledged within {self._timeout}s"
                    future.set_exception(DependencyUnavailableError(error))
            deadlines.popleft()

    def _recover(self) -> bool:
        """Replace a condemned producer when its backoff allows; True if one is usable."""
        condemned = self._client
        if self.lifecycle.condemned and self._purged is not condemned:
            # Its outstanding records are of unknown fate: answer them 503 now, not at expiry.
            discard_producer(condemned)
            self._purged = condemned
        if self.lifecycle.recover():
            self._purged = None
            return True
        if self.lifecycle.gave_up and not self._gave_up_reported:
            self._gave_up_reported = True
            if self._on_give_up is not None:
                self._on_give_up()
        return False

    def _produce_outbox(self, loop: asyncio.AbstractEventLoop) -> None:
        # The records of one loop iteration go out back to back: librdkafka wakes its broker
        # thread (a syscall, ~15 us here) for a record that finds it asleep, not for the ones
        # that follow before it has woken.
        outbox, self._outbox = self._outbox, []
        if not self._recover():
            detail = self.lifecycle.status().detail
            for _record, future in outbox:
                if not future.done():
                    future.set_exception(DependencyUnavailableError(f"producer: {detail}"))
            self._schedule_poll(loop, _RECOVERY_POLL_SECONDS)
            return
        producer = self._client
        report = self.lifecycle.note_delivery
        for record, future in outbox:
            try:
                self._produce(producer, record, partial(_report, report, future), "the event")
            except BufferError:
                future.set_exception(DependencyUnavailableError("producer queue is full"))
            except DependencyUnavailableError as exc:
                future.set_exception(exc)
        self._schedule_poll(loop)

    def _schedule_poll(
        self, loop: asyncio.AbstractEventLoop, delay: float = _POLL_INTERVAL_SECONDS
    ) -> None:
        # A timer left on a loop that has ended never fires: a new loop gets its own. An
        # idle poll due later than this one is brought forward.
        current = self._poller
        if current is not None and self._poller_loop is loop:
            if current.when() <= loop.time() + delay:
                return
            current.cancel()
        self._poller = loop.call_later(delay, self._poll)
        self._poller_loop = loop
