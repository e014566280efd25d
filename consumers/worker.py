"""The `capi worker` loop: consume main + retry tiers, run the pipeline, forward, commit.

One iteration: resume due partitions; collect a batch (size and time bounded); hold back
records not yet due; prepare the rest (decode, contacts, hash); then hand the batch to a
finisher thread (upsert the rows, send to Meta, record outcomes, produce retries and dead
letters with acks). Up to ``max_inflight_batches`` batches finish at once
(``consumers.inflight``), so Meta's latency is paid for several batches together while the
next one is prepared. Before handing one over, the loop commits every finished batch at
the head, oldest first, and waits for the oldest while the limit is reached: offsets still
move only in order, synchronously on the loop's thread, and only after every record of a
batch was handled (a later batch that completed first waits for the earlier ones). A
dependency outage rewinds every batch not yet committed and pauses everything until a
``SELECT 1`` and a metadata round trip through the forward producer succeed (full-jitter
backoff), so no attempt is burned and nothing is lost.

Both Kafka clients are owned by a ``ClientLifecycle`` (``capi_stream.kafka.lifecycle``): a
forward producer that turns unusable (fatal error, stuck after a broker restart, a forward
timed out) fails its batch, which is rewound like any outage, and is replaced before the
replay; a consumer with a fatal error is closed and a fresh one subscribes (it resumes from
the committed offsets). If a client cannot be brought back, ``run`` raises
``ClientUnrecoverableError`` and ``capi worker`` exits non-zero for its orchestrator.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, cast

from confluent_kafka import KafkaException, Message, TopicPartition
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import EventCodec
from capi_stream.errors import ClientUnrecoverableError, DependencyUnavailableError
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.consumer import Consumer, close_consumer
from capi_stream.kafka.lifecycle import ClientLifecycle, RecoveryPolicy
from capi_stream.kafka.message import KafkaRecord, PartitionKey
from capi_stream.kafka.producer import ConfirmedProducer
from capi_stream.kafka.topics import TopicNames
from consumers.assembly import (
    build_consumers,
    build_forward_producer,
    build_worker_parts,
)
from consumers.batch import collect_batch
from consumers.config import WorkerConfig
from consumers.delays import is_due
from consumers.headers import HopContext, Origin, parse_hop
from consumers.health import (
    HealthProbes,
    HealthServer,
    liveness,
    readiness,
    start_health_server,
)
from consumers.inflight import InFlight, InFlightBatches, earliest_offsets
from consumers.partitions import PartitionControl
from consumers.pipeline.processor import BatchReport, Incoming, PreparedBatch
from consumers.pipeline.tenants import MetaSender
from consumers.rebalance import Rebalance

logger = logging.getLogger(__name__)

# The metadata round trip that proves the forward producer reaches a broker again.
_BROKER_CHECK_SECONDS = 1.0


def _now_ms() -> int:
    return int(time.time() * 1000)


class Worker:
    """A consumer-group member; ``run()`` blocks until ``stop_event`` is set.

    Its parts are built by ``consumers.assembly``, its rebalance bookkeeping is
    ``consumers.rebalance.Rebalance``, its probes are ``consumers.health``; this class is
    the loop.

    Raises (from ``run``):
        DeadLetterLimitError: too many dead letters in the window (after committing).
    """

    def __init__(
        self,
        *,
        kafka: KafkaConfig,
        topics: TopicNames,
        sessions: sessionmaker[Session],
        codec: EventCodec,
        config: WorkerConfig,
        stop_event: threading.Event | None = None,
        build_client: Callable[[Mapping[str, Any]], MetaSender] | None = None,
        recovery: RecoveryPolicy | None = None,
    ) -> None:
        self.kafka, self.topics, self.config, self.codec = kafka, topics, config, codec
        self.stop_event = stop_event or threading.Event()
        parts = build_worker_parts(
            topics=topics, sessions=sessions, codec=codec, config=config, build_client=build_client
        )
        self.metrics, self.store, self.tenants = parts.metrics, parts.store, parts.tenants
        self.processor, self.sender = parts.processor, parts.processor.sender
        self.dlq_limit, self.backoff = parts.dlq_limit, parts.backoff
        self.metrics.watch(self.ready, self.dlq_limit, parts.dead_letter_stats.read)
        self.rebalance = Rebalance(self.metrics, self)
        self.stopped_by_dlq_limit = False
        self.health: HealthServer | None = None
        self._outage_retry_at = 0.0
        self._collecting: list[Message] = []
        self._last_loop = time.monotonic()
        self._last_lag = 0.0
        self.recovery = recovery or RecoveryPolicy()
        self._consumer: Consumer | None = None
        self._consumers: ClientLifecycle[Consumer] | None = None
        self._producer: ConfirmedProducer | None = None
        self._control: PartitionControl | None = None
        limit = config.max_inflight_batches
        self._inflight = InFlightBatches(limit, self._observe)
        # One thread per batch in flight: they may complete in any order, commits do not.
        self._finisher = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="batch-finish")

    # -- lifecycle -------------------------------------------------------------------------
    def run(self) -> None:
        consumers = build_consumers(self.kafka, self.config, self.recovery)
        producer = build_forward_producer(self.kafka, self.recovery)
        self._consumers, self._producer = consumers, producer
        self._attach(consumers.client)
        if self.config.metrics_port is not None:
            probes = HealthProbes(self.live, self.ready, self.metrics.render)
            self.health = start_health_server(
                probes, self.config.metrics_host, self.config.metrics_port
            )
        logger.info(
            "worker started",
            extra={
                "topics": self.config.subscribed_topics(self.topics),
                "group": self.config.group_id,
            },
        )
        try:
            while not self.stop_event.is_set():
                if consumers.condemned or consumers.gave_up:
                    self._replace_consumer(consumers, producer)
                    continue
                self._iterate(consumers.client, producer)
            self._settle(consumers.client, producer)  # the batches in flight are committed first
            logger.info("worker stopping: signal received")
        finally:
            self._finisher.shutdown(wait=True)  # it may still use the producer
            close_consumer(consumers.client)  # leaves the group at once
            producer.close()
            self.sender.close()
            self.tenants.close()
            if self.health is not None:
                self.health.stop()
            logger.info("worker stopped")

    def _attach(self, consumer: Consumer) -> None:
        """Make ``consumer`` the one the loop polls, and subscribe it."""
        in_outage = self._control is not None and self._control.in_outage
        self._consumer, self._control = consumer, PartitionControl(consumer)
        self._control.in_outage = in_outage  # a replaced consumer inherits the outage
        consumer.subscribe(
            self.config.subscribed_topics(self.topics),
            on_assign=self.rebalance.on_assign,
            on_revoke=self.rebalance.on_revoke,
            on_lost=self.rebalance.on_lost,
        )

    def _replace_consumer(
        self, consumers: ClientLifecycle[Consumer], producer: ConfirmedProducer
    ) -> None:
        """A condemned consumer: settle what it fetched, close it, subscribe a fresh one.

        The batch in flight cannot be committed through a dead consumer: it is rewound as in
        an outage and the new member re-reads it from the committed offsets.

        Raises:
            ClientUnrecoverableError: replacing it kept failing past the policy's bound.
        """
        self._settle(consumers.client, producer)
        if not consumers.recover():
            if consumers.gave_up:
                raise ClientUnrecoverableError(f"kafka consumer: {consumers.status().detail}")
            self.stop_event.wait(0.05)  # its backoff; a stop request still ends it at once
            return
        # The old member's partitions, pauses and half-collected records are gone with it.
        self.rebalance.reset()
        self._collecting = []
        self._attach(consumers.client)

    def _consume(self, count: int, timeout: float) -> list[Message]:
        """``consume`` of the current consumer; a fatal error event condemns it."""
        assert self._consumers is not None
        messages = self._consumers.client.consume(count, timeout)
        for message in messages:
            error = message.error()
            if error is not None and error.fatal():
                self._consumers.condemn(f"fatal consumer error: {error.str()}")
        return messages

    # -- probes (asked from the health server's thread) ------------------------------------
    def live(self) -> tuple[bool, str]:
        return liveness(time.monotonic() - self._last_loop)

    def ready(self) -> tuple[bool, str]:
        consumers, producer = self._consumers, self._producer
        # Never touch the consumer here: it is not thread-safe; callbacks keep the set.
        return readiness(
            stopped_by_dlq_limit=self.stopped_by_dlq_limit,
            in_outage=self._control is not None and self._control.in_outage,
            clients=[
                ("consumer", consumers.status() if consumers is not None else None),
                ("forward producer", producer.status() if producer is not None else None),
            ],
            assigned=len(self.rebalance.assigned),
        )

    # -- rebalance hooks (``RebalanceHooks``: run inside consume/poll, on this thread) -----
    def commit_inflight(self, consumer: Consumer) -> None:
        """Commit the batches in flight early (before a revoke); failures wait for ``_settle``."""
        self._inflight.commit_all(partial(self._commit, consumer))

    def forget_inflight(self, gone: set[PartitionKey]) -> None:
        self._inflight.forget(gone)

    def drop_partitions(self, partitions: list[TopicPartition], gone: set[PartitionKey]) -> None:
        if self._control is not None:
            self._control.forget(partitions)
        self._collecting[:] = [
            m for m in self._collecting if (m.topic(), m.partition()) not in gone
        ]

    # -- the loop --------------------------------------------------------------------------
    def _iterate(self, consumer: Consumer, producer: ConfirmedProducer) -> None:
        assert self._control is not None
        self._last_loop = time.monotonic()
        self._control.resume_due(_now_ms())
        fresh = self.rebalance.take_fresh()
        if fresh:  # assigned again after a revoke: must not inherit an old pause
            self._control.resume_fresh(fresh)
        self.metrics.paused.set(len(self._control.book))
        if self._control.in_outage:
            self._outage_step(consumer)
            return
        self._collecting = []
        batch = collect_batch(
            self._consume,
            self._collecting,
            max_events=self.config.batch_max_events,
            max_wait_seconds=self.config.batch_max_wait_seconds,
        )
        if batch:
            self._handle(consumer, producer, list(batch))
        else:  # quiet: nothing to overlap with, so commit the batch in flight now
            self._settle(consumer, producer)
        self._update_lag(consumer)

    def _handle(
        self, consumer: Consumer, producer: ConfirmedProducer, batch: list[Message]
    ) -> None:
        assert self._control is not None
        self.metrics.batch_size.observe(len(batch))
        now_ms = _now_ms()
        ready: list[Incoming] = []
        waiting: dict[PartitionKey, tuple[int, int]] = {}
        first: dict[PartitionKey, int] = {}
        consumed: dict[str, int] = {}  # per topic: one metric update per batch, not per record
        paused = self._control.book.keys()  # no callback runs during this loop
        for message in batch:
            incoming = _incoming(message)
            key = (incoming.topic, incoming.partition)
            if key in paused:
                continue  # fetched before its pause: re-read from the seek position later
            first.setdefault(key, incoming.offset)
            consumed[incoming.topic] = consumed.get(incoming.topic, 0) + 1
            if key in waiting:
                continue  # behind a record that is not due: re-read after resume
            if not is_due(incoming.context.due_ms, now_ms):
                waiting[key] = (incoming.offset, incoming.context.due_ms or now_ms)
                continue
            ready.append(incoming)
        for topic, count in consumed.items():
            self.metrics.consumed.labels(topic).inc(count)
        try:
            prepared = self.processor.prepare(ready) if ready else None
        except DependencyUnavailableError as exc:
            if self._settle(consumer, producer, first):  # the batches before may still land
                self._start_outage(producer, first, exc)
            return
        keys = frozenset(prepared.events) if prepared is not None else frozenset()
        # The same event in a batch in flight: let that one land first (no double send).
        keep = 0 if self._inflight.overlaps(keys) else self._inflight.limit - 1
        if not self._settle(consumer, producer, first, keep=keep):
            return
        for key, (offset, due_ms) in waiting.items():
            self._control.defer(key, offset, due_ms)
        if prepared is not None:
            future = self._finisher.submit(self._finish, prepared, producer)
            self._inflight.add(InFlight(future, ready, first, len(batch), keys))

    def _finish(self, batch: PreparedBatch, producer: ConfirmedProducer) -> BatchReport:
        """On the finisher thread: upsert, send, record, forward with acks. Never commits."""
        report = self.processor.finish(batch)
        if report.forwards:
            producer.send_all(report.forwards)
        return report

    def _settle(
        self,
        consumer: Consumer,
        producer: ConfirmedProducer,
        pending_first: Mapping[PartitionKey, int] | None = None,
        keep: int = 0,
    ) -> bool:
        """Commit the finished batches in order, waiting while more than ``keep`` are in
        flight (0: all of them); False if an outage began instead.

        ``pending_first``: first offsets of a batch prepared but not yet handed over; on an
        outage it is rewound together with every batch in flight.

        Raises:
            DeadLetterLimitError: too many dead letters in the window (after committing).
        """
        rewind = self._inflight.settle(keep, partial(self._commit, consumer))
        if rewind is None:
            return True
        self._start_outage(
            producer, earliest_offsets(rewind.first, pending_first or {}), rewind.error
        )
        return False

    def _observe(self, records: int, report: BatchReport) -> None:
        self.metrics.observe_batch(report)
        logger.info(
            "batch handled",
            extra={
                "records": records,
                "sent": report.sent,
                "retried": sum(report.retried_by_topic.values()),
                "dead_lettered": report.dead_lettered,
                "expired": report.expired,
            },
        )
        if report.dead_lettered:
            self.dlq_limit.add(report.dead_lettered)
            if self.dlq_limit.exceeded():
                self.stopped_by_dlq_limit = True
                error = self.dlq_limit.error()
                logger.error(str(error))
                self.stop_event.set()
                raise error

    def _commit(self, consumer: Consumer, handled: Sequence[Incoming]) -> None:
        next_offsets: dict[PartitionKey, int] = {}
        for incoming in handled:
            key = (incoming.topic, incoming.partition)
            next_offsets[key] = max(next_offsets.get(key, 0), incoming.offset + 1)
        if not next_offsets:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in next_offsets.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise DependencyUnavailableError(f"offset commit failed: {exc}") from exc

    def _start_outage(
        self, producer: ConfirmedProducer, first: Mapping[PartitionKey, int], exc: Exception
    ) -> None:
        assert self._control is not None
        # Queued forwards would duplicate the replay; in-flight ones may still land (harmless:
        # the next hop finds the row sent).
        producer.purge()
        self._control.rewind(first)
        self._control.enter_outage()
        delay = self.backoff.next_delay()
        self._outage_retry_at = time.monotonic() + delay
        self.metrics.outages.inc()
        self.metrics.outage.set(1)
        logger.warning(
            "dependency unavailable: batch rewound, consumption paused",
            extra={"error": str(exc), "retry_in_s": round(delay, 2)},
        )

    def _outage_step(self, consumer: Consumer) -> None:
        assert self._control is not None
        message = consumer.poll(0.1)  # keeps the group membership alive; paused = nothing
        if message is not None and message.error() is None:
            self._control.hold(message)
        self._control.pause_all()
        if time.monotonic() < self._outage_retry_at:
            return
        try:
            self.store.ping()
            if self._producer is not None:  # replaced here if condemned; raises if gave up
                self._producer.check(_BROKER_CHECK_SECONDS)
        except DependencyUnavailableError as exc:
            delay = self.backoff.next_delay()
            self._outage_retry_at = time.monotonic() + delay
            logger.info(
                "still unavailable", extra={"error": str(exc), "retry_in_s": round(delay, 2)}
            )
            return
        self.backoff.reset()
        self._control.leave_outage()
        self.metrics.outage.set(0)
        logger.info("dependency back: consumption resumed")

    def _update_lag(self, consumer: Consumer) -> None:
        now = time.monotonic()
        if now - self._last_lag < 1.0:
            return
        self._last_lag = now
        if not self._inflight and self._producer is not None:
            self._producer.serve_events()  # idle: its callbacks run here, once a second
        assignment = consumer.assignment()
        if not assignment:
            return
        for tp in consumer.position(assignment):
            _low, high = consumer.get_watermark_offsets(tp, cached=True)
            if high is not None and high >= 0 and tp.offset >= 0:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, high - tp.offset))
                self.rebalance.lag_labels.add((tp.topic, tp.partition))


def _incoming(message: Message) -> Incoming:
    value = message.value()
    key = message.key()
    topic, partition = message.topic() or "", message.partition() or 0
    offset = message.offset() or 0
    if message.headers():
        context = parse_hop(cast(KafkaRecord, message))
    else:  # a main-topic record (no headers): what parse_hop gives, without asking again
        context = HopContext(1, None, Origin(topic, partition, offset, message.timestamp()[1]))
    return Incoming(  # positional: a NamedTuple takes keywords at twice the cost
        topic,
        partition,
        offset,
        key.encode() if isinstance(key, str) else key,
        value.encode() if isinstance(value, str) else (value or b""),
        context,
    )
