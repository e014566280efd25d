"""``capi replay``: re-process a topic's events from a time range (analysts' backfills).

Reading never disturbs the live worker group: partitions are ``assign()``-ed, and offsets
are committed only under a dedicated ``group_id`` when one is given (``capi-replay-...``;
the live group's name is refused). With a group, progress is committed after each batch,
so running the same command again resumes where it stopped.

Range: record timestamps in ``[start_ms, end_ms)``, the end excluded as in ``capi export``
(so consecutive ranges never overlap); a range starting in the future is refused. The seek
and the stop are described in ``ops.replay.scan`` (correct on Kafka and on the
embedded broker). Filters (tenant, event names) apply to the decoded event.

Processing is the worker's own ``BatchProcessor`` (decode, tenant, contacts, hash, upsert,
send, outcomes), composed as ``ops.replay.modes`` describes:

* idempotent by default: an event whose row is already sent is skipped;
* ``resend``: sent again with the same ``event_id`` (Meta deduplicates within 48 h);
* ``no_send``: rows rebuilt (hashed), no Meta call; unsent rows become ``skipped``;
* ``dry_run``: outcomes predicted (``ops.replay.dry``), nothing written.

Events older than Meta's 7 days are recorded ``expired`` and never sent. Failures are
handled like the worker does: retriable ones go to the retry tiers, permanent ones to the
dead-letter topic, produced with acks before any commit; the live worker then owns them.
An event that already has a dead letter is never copied to the DLQ again
(``ops.replay.dead_letters``): if it fails again, its one dead letter stays the place to act.
(A failed ``resend`` of an already-sent event is counted and forwarded, but the retry tier
finds the row sent and drops it: run ``--resend`` again.) Undecodable records are counted
and left alone: the worker dead-lettered them when it first read them. With ``no_send``
nothing is produced. The dead-letter limit stops a replay as it stops the worker;
``max_rate`` caps the pace (events per second) for tenants with tight Meta quotas.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from confluent_kafka import KafkaException, Message
from confluent_kafka import TopicPartition as KafkaTopicPartition
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import EventCodec
from capi_stream.errors import DecodeError, DependencyUnavailableError
from capi_stream.event import ConversionEvent
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.consumer import Consumer
from capi_stream.kafka.message import KafkaRecord
from capi_stream.kafka.producer import ConfirmedProducer
from capi_stream.kafka.scan import PartitionKey, build_scan_consumer, list_partitions
from capi_stream.kafka.topics import TopicNames
from consumers.config import WorkerConfig
from consumers.dlq_limit import DeadLetterLimit, DeadLetterLimitError
from consumers.headers import parse_hop
from consumers.pipeline.assembly import build_processor
from consumers.pipeline.processor import BatchProcessor, Incoming
from consumers.pipeline.store import SqlEventStore
from consumers.pipeline.tenants import MetaSender
from ops.dlq.reader import iter_dead_letters
from ops.replay.dead_letters import DeadLetterIndex
from ops.replay.dry import DryRunPlanner
from ops.replay.modes import Outcome, ReplayStore, build_tenant_cache
from ops.replay.scan import plan_range, read_range
from ops.replay.types import (
    ReplayProgress,
    ReplayRequest,
    ReplayRequestError,
    ReplaySummary,
)

logger = logging.getLogger(__name__)

__all__ = [
    "Outcome",
    "ReplayProgress",
    "ReplayRequest",
    "ReplayRequestError",
    "ReplaySummary",
    "replay_events",
]


def replay_events(
    *,
    kafka: KafkaConfig,
    topics: TopicNames,
    sessions: sessionmaker[Session],
    codec: EventCodec,
    config: WorkerConfig,
    request: ReplayRequest,
    progress: ReplayProgress | None = None,
    build_client: Callable[[Mapping[str, Any]], MetaSender] | None = None,
) -> ReplaySummary:
    """Replay ``request``; ``config`` is the worker's (its ``group_id`` is the live group).

    Raises:
        ReplayRequestError: ``request.group_id`` is the live worker group, or bad options.
        DependencyUnavailableError: broker or database unavailable (with a group, rerun
            to resume; without, rerun: events already sent are skipped).
        DeadLetterLimitError: too many dead letters (after committing what was handled).
    """
    if request.group_id is not None and request.group_id == config.group_id:
        raise ReplayRequestError(
            f"{request.group_id!r} is the live worker group; a replay never uses it"
        )
    if request.resend and request.no_send:
        raise ReplayRequestError("--resend and --no-send exclude each other")
    if request.end_ms <= request.start_ms:
        raise ReplayRequestError("the range is empty: --to must be after --from")
    if request.start_ms > _now_ms():
        raise ReplayRequestError("the range starts in the future: nothing to replay yet")
    run = _ReplayRun(kafka, topics, sessions, codec, config, request, build_client)
    try:
        return run.execute(progress)
    finally:
        run.close()


class _ReplayRun:
    def __init__(
        self,
        kafka: KafkaConfig,
        topics: TopicNames,
        sessions: sessionmaker[Session],
        codec: EventCodec,
        config: WorkerConfig,
        request: ReplayRequest,
        build_client: Callable[[Mapping[str, Any]], MetaSender] | None,
    ) -> None:
        self.request, self.codec, self.summary = request, codec, ReplaySummary()
        self.consumer: Consumer = build_scan_consumer(kafka, request.group_id)
        self.producer: ConfirmedProducer | None = None
        self.planner: DryRunPlanner | None = None
        self.processor: BatchProcessor | None = None
        self.dlq_limit = DeadLetterLimit(config.dlq_limit_count, config.dlq_limit_window_seconds)
        self.batch: list[tuple[Incoming, ConversionEvent]] = []
        self.positions: dict[PartitionKey, int] = {}
        self.dlq_topic = topics.dlq
        # --no-send forwards nothing, so it cannot duplicate a dead letter: no DLQ scan.
        self.dead_letters = DeadLetterIndex()
        if not request.no_send:
            self.dead_letters = DeadLetterIndex.from_headers(
                (d.tenant_id, d.event_id) for d in iter_dead_letters(kafka, topics.dlq)
            )
        modes = {"resend": request.resend, "no_send": request.no_send}
        if request.dry_run:
            self.planner = DryRunPlanner(sessions, **modes)
            return
        inner = SqlEventStore(sessions)
        self.store = ReplayStore(inner, **modes, dead_letters=self.dead_letters)
        tenants = build_tenant_cache(
            inner.load_tenant, config, no_send=request.no_send, build_client=build_client
        )
        if not request.no_send:  # --no-send produces nothing: no retries, no dead letters
            self.producer = ConfirmedProducer(kafka.producer_config())
        self.processor = build_processor(
            codec=codec,
            topics=topics,
            sessions=sessions,
            store=self.store,
            tenants=tenants,
            config=config,
        )
        self.tenants, self.sender = tenants, self.processor.sender

    def execute(self, progress: ReplayProgress | None) -> ReplaySummary:
        request, summary = self.request, self.summary
        partitions = list_partitions(self.consumer, request.topic)
        plan = plan_range(
            self.consumer, request.topic, partitions, request.start_ms, request.end_ms
        )
        summary.lookup_used, summary.expected = plan.lookup_used, plan.expected
        starts = self._resume(plan.starts) if request.group_id else plan.starts
        logger.info(
            "replay started",
            extra={
                "topic": request.topic,
                "group": request.group_id,
                "starts": {f"{t}[{p}]": o for (t, p), o in starts.items()},
                "expected": plan.expected,
                "lookup_used": plan.lookup_used,
                "dry_run": request.dry_run,
            },
        )
        if progress is not None:
            progress.start(plan.expected)
        batch_size = request.batch_size
        if request.max_rate is not None:  # small batches keep the pace even
            batch_size = max(1, min(batch_size, int(request.max_rate)))
        began = time.monotonic()
        for message in read_range(self.consumer, starts, request.end_ms):
            in_range = self._take(message)
            if progress is not None:
                progress.advance(1, int(in_range))
            if len(self.batch) >= batch_size:
                self._flush()
                self._pace(began)
        self._flush()
        logger.info(
            "replay finished",
            extra={"scanned": summary.scanned, "matched": summary.matched, **summary.by_outcome()},
        )
        return summary

    def _pace(self, began: float) -> None:
        """With ``max_rate``, wait until the events handled so far are within the rate."""
        if self.request.max_rate is None:
            return
        ahead = self.summary.matched / self.request.max_rate - (time.monotonic() - began)
        if ahead > 0:
            time.sleep(ahead)

    def _resume(self, starts: dict[PartitionKey, int]) -> dict[PartitionKey, int]:
        """A dedicated group that already made progress continues from its commits."""
        try:
            committed = self.consumer.committed([KafkaTopicPartition(*k) for k in starts], 10.0)
        except KafkaException as exc:
            raise DependencyUnavailableError(f"cannot read committed offsets: {exc}") from exc
        resumed = dict(starts)
        for tp in committed:
            key = (tp.topic, tp.partition)
            if tp.error is None and tp.offset >= 0 and tp.offset > resumed[key]:
                resumed[key] = tp.offset
        return resumed

    def _take(self, message: Message) -> bool:
        """Count, filter and queue one record; True when it is in the time range."""
        request, summary = self.request, self.summary
        summary.scanned += 1
        timestamp = message.timestamp()[1]
        if timestamp >= request.end_ms:
            return False  # the record that ends its partition: not handled, not committed
        key = (message.topic() or "", message.partition() or 0)
        self.positions[key] = (message.offset() or 0) + 1
        if timestamp < request.start_ms:
            return False
        summary.in_range += 1
        incoming = _incoming(message)
        try:
            event = self.codec.decode(incoming.value)
        except DecodeError:
            summary.undecodable += 1
            return True
        if request.tenant_ids and event.tenant_id not in request.tenant_ids:
            return True
        if request.event_names and event.event_name not in request.event_names:
            return True
        summary.matched += 1
        self.batch.append((incoming, event))
        return True

    def _flush(self) -> None:
        batch, self.batch = self.batch, []
        events = [event for _, event in batch]
        if self.planner is not None:
            predicted = self.planner.predict(events, datetime.now(UTC))
            self._tally(events, predicted, Outcome.DEAD_TENANT, "would be ")
            return
        if batch:
            assert self.processor is not None
            report = self.processor.process([incoming for incoming, _ in batch])
            split = self.dead_letters.split(report.forwards, self.dlq_topic)
            dead_lettered = sum(1 for r in split.kept if r.topic == self.dlq_topic)
            if self.producer is not None and split.kept:
                self.producer.send_all(split.kept)  # acked before any commit
                self.summary.forwarded += len(split.kept)
            if self.producer is not None:
                self.summary.dead_lettered += dead_lettered
                self.summary.not_copied_again += split.dropped
            failed = self.summary.failed_by_class
            for name, count in report.failed_by_class.items():
                failed[name] = failed.get(name, 0) + count
            self._tally(events, self.store.take_outcomes(), self.store.no_row)
            self.dead_letters.add(split.new_dead)
            self.dlq_limit.add(dead_lettered)
        self._commit()
        if self.dlq_limit.exceeded():
            raise DeadLetterLimitError(
                f"dead-letter limit reached: {self.dlq_limit.recent} dead letters in the last "
                f"{self.dlq_limit.window_seconds:g}s; the replay stopped after committing what "
                "it handled. Inspect the DLQ (`capi dlq list`) and fix the cause first."
            )

    def _tally(
        self,
        events: Sequence[ConversionEvent],
        labels: Mapping[tuple[uuid.UUID, str], str],
        no_row: str,
        prefix: str = "",
    ) -> None:
        failed = {Outcome.DEAD, Outcome.DEAD_TENANT, Outcome.RETRYING}
        for event in events:  # a duplicate inside a batch shares its first copy's outcome
            key = (event.tenant_id, event.event_id)
            outcome = labels.get(key, prefix + no_row)
            if outcome.removeprefix(prefix) in failed and key in self.dead_letters:
                outcome = prefix + Outcome.STILL_DEAD
            self.summary.outcomes[(str(event.tenant_id), event.event_name, outcome)] += 1

    def _commit(self) -> None:
        if self.request.group_id is None or self.request.dry_run or not self.positions:
            return
        offsets = [KafkaTopicPartition(t, p, o) for (t, p), o in self.positions.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise DependencyUnavailableError(f"offset commit failed: {exc}") from exc

    def close(self) -> None:
        self.consumer.close()
        if self.processor is not None:
            self.sender.close()
            self.tenants.close()
        if self.producer is not None:
            self.producer.close()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _incoming(message: Message) -> Incoming:
    key, value = message.key(), message.value()
    return Incoming(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=key.encode() if isinstance(key, str) else key,
        value=value.encode() if isinstance(value, str) else (value or b""),
        context=parse_hop(cast(KafkaRecord, message)),
    )
