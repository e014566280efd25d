"""Redrive: send selected dead letters back to the main topic with a fresh attempt budget.

Safety rules (the runbook is in docs/operations.md):

- Headers are replaced by ``capi-redrive-count`` (incremented) and ``capi-redriven-by``; the
  worker sees no ``capi-attempt`` and starts again at attempt 1.
- Loop guard: a record redriven ``max_redrives`` times already is refused. The count is the
  larger of its header and the ``redrive_audit`` rows of its event id, so the guard holds even
  if a hop dropped the header.
- Events past Meta's 7-day window are refused with that reason: Meta would reject them.
- Progress: the dead-letter topic is read with ``assign()`` under a consumer group of its
  own (never the worker's), named after the selection, so re-running the same command
  resumes. Offsets are committed only after the produce is acknowledged and the audit rows
  are stored. A record already redriven (audit row at the same coordinates) is skipped.
- Every decision writes one ``redrive_audit`` row: redriven, refused or dry-run.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import timedelta

from confluent_kafka import TopicPartition as KafkaTopicPartition
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import EventCodec
from capi_stream.errors import CapiError, DecodeError
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.consumer import Consumer
from capi_stream.kafka.producer import ConfirmedProducer, OutgoingRecord
from capi_stream.kafka.scan import OFFSET_BEGINNING, build_scan_consumer, list_partitions, log_end
from capi_stream.kafka.scan import scan_partitions as _scan
from ops.dlq.records import DeadLetter, DeadLetterFilter, Header, RecordRef
from ops.dlq.records import parse_dead_letter as _parse
from storage.errors import map_db_errors
from storage.redrive import RedriveEntry, add_redrive_entries, load_redrive_history

__all__ = [
    "META_WINDOW",
    "TOO_OLD_REASON",
    "DeadLetterNotFoundError",
    "Outcome",
    "RedriveItem",
    "RedriveOptions",
    "RedriveReport",
    "redrive_dead_letters",
    "redrive_group_id",
]

META_WINDOW = timedelta(days=7)
TOO_OLD_REASON = "older than Meta's 7-day window"
GROUP_PREFIX = "capi-dlq-redrive"


class DeadLetterNotFoundError(CapiError):
    """A record named for redrive does not exist."""


class Outcome:
    REDRIVEN = "redriven"
    REFUSED = "refused"
    DRY_RUN = "dry-run"


@dataclass(frozen=True, slots=True)
class RedriveOptions:
    """How to redrive; ``refs`` names records explicitly instead of scanning with a filter."""

    actor: str
    target_topic: str
    max_redrives: int = 3
    dry_run: bool = False
    rate: float | None = None
    group_id: str | None = None
    from_beginning: bool = False
    refs: tuple[RecordRef, ...] = ()


@dataclass(frozen=True, slots=True)
class RedriveItem:
    ref: RecordRef
    outcome: str
    reason: str | None
    event_id: str | None
    tenant_id: str | None


@dataclass(slots=True)
class RedriveReport:
    group_id: str | None
    items: list[RedriveItem] = field(default_factory=list)
    scanned: int = 0
    already_redriven: int = 0

    def counts(self) -> dict[str, int]:
        counts = {Outcome.REDRIVEN: 0, Outcome.REFUSED: 0, Outcome.DRY_RUN: 0}
        for item in self.items:
            counts[item.outcome] += 1
        return counts


def redrive_group_id(dlq_topic: str, selection: DeadLetterFilter, target: str) -> str:
    """The progress group of one selection: the same command resumes where it stopped."""
    digest = hashlib.sha256(f"{dlq_topic}|{target}|{selection.describe()}".encode()).hexdigest()
    return f"{GROUP_PREFIX}.{digest[:12]}"


def _tenant_uuid(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


class _Pacer:
    """At most ``rate`` sends per second (sleeping is the point here)."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = time.monotonic()

    def wait(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        if self._next > now:
            time.sleep(self._next - now)
        self._next = max(self._next, now) + self._interval


class _Redrive:
    def __init__(
        self,
        dlq_topic: str,
        codec: EventCodec,
        sessions: sessionmaker[Session],
        options: RedriveOptions,
        now_ms: int,
        report: RedriveReport,
    ) -> None:
        self.dlq_topic = dlq_topic
        self.codec = codec
        self.sessions = sessions
        self.options = options
        self.now_ms = now_ms
        self.report = report
        with map_db_errors("redrive history"), sessions() as session:
            history = load_redrive_history(session, dlq_topic, Outcome.REDRIVEN)
        self.done = history.done
        self.counts = history.counts

    def decide(self, letter: DeadLetter) -> tuple[str, str | None, int] | None:
        """(outcome, reason, new redrive count), or None when already redriven."""
        if (letter.ref.partition, letter.ref.offset) in self.done:
            return None
        previous = max(letter.redrive_count, self.counts.get(letter.event_id or "", 0))
        if previous >= self.options.max_redrives:
            limit = self.options.max_redrives
            return Outcome.REFUSED, f"redriven {previous} times already (limit {limit})", previous
        try:
            event_ms = int(self.codec.decode(letter.value).event_time.timestamp() * 1000)
        except DecodeError:
            event_ms = letter.original_timestamp_ms
        if self.now_ms - event_ms > META_WINDOW.total_seconds() * 1000:
            return Outcome.REFUSED, TOO_OLD_REASON, previous
        if self.options.dry_run:
            return Outcome.DRY_RUN, None, previous + 1
        return Outcome.REDRIVEN, None, previous + 1

    def handle(
        self, letters: list[DeadLetter], producer: ConfirmedProducer | None, pacer: _Pacer
    ) -> None:
        """Decide, send (acknowledged), then store the audit rows of a batch."""
        items: list[RedriveItem] = []
        for letter in letters:
            decision = self.decide(letter)
            if decision is None:
                self.report.already_redriven += 1
                continue
            outcome, reason, count = decision
            if outcome == Outcome.REDRIVEN and producer is not None:
                pacer.wait()
                headers = [
                    (Header.REDRIVE_COUNT, str(count).encode()),
                    (Header.REDRIVEN_BY, self.options.actor.encode()),
                ]
                producer.send(
                    OutgoingRecord(
                        self.options.target_topic, letter.value, key=letter.key, headers=headers
                    )
                )
                self.done.add((letter.ref.partition, letter.ref.offset))
                if letter.event_id:
                    self.counts[letter.event_id] = count
            items.append(
                RedriveItem(letter.ref, outcome, reason, letter.event_id, letter.tenant_id)
            )
        if not items:
            return
        entries = [
            RedriveEntry(
                item.ref.partition,
                item.ref.offset,
                item.outcome,
                item.reason,
                item.event_id,
                _tenant_uuid(item.tenant_id),
            )
            for item in items
        ]
        with map_db_errors("redrive audit"), self.sessions.begin() as session:
            add_redrive_entries(
                session,
                actor=self.options.actor,
                dlq_topic=self.dlq_topic,
                target_topic=self.options.target_topic,
                entries=entries,
            )
        self.report.items.extend(items)


def redrive_dead_letters(
    kafka: KafkaConfig,
    dlq_topic: str,
    codec: EventCodec,
    sessions: sessionmaker[Session],
    selection: DeadLetterFilter,
    options: RedriveOptions,
    now_ms: int | None = None,
) -> RedriveReport:
    """Redrive the dead letters picked by ``options.refs`` or by ``selection``.

    Raises:
        DependencyUnavailableError: the broker refused or did not acknowledge a record, or
            the database failed; the progress of everything acknowledged before it is kept.
    """
    moment = int(time.time() * 1000) if now_ms is None else now_ms
    by_refs = bool(options.refs)
    derived = redrive_group_id(dlq_topic, selection, options.target_topic)
    group = None if by_refs else (options.group_id or derived)
    report = RedriveReport(group_id=group)
    run = _Redrive(dlq_topic, codec, sessions, options, moment, report)
    batch_size = 1 if options.rate else 100
    pacer = _Pacer(options.rate)
    consumer = build_scan_consumer(kafka, group)
    producer = None if options.dry_run else ConfirmedProducer(kafka.producer_config())
    try:
        batch: list[DeadLetter] = []
        positions: dict[int, int] = {}
        for letter in _select(consumer, dlq_topic, selection, options, moment, positions):
            report.scanned += 1
            batch.append(letter)
            if len(batch) >= batch_size:
                run.handle(batch, producer, pacer)
                batch = []
                _commit(consumer, dlq_topic, positions, group, options)
        run.handle(batch, producer, pacer)
        _commit(consumer, dlq_topic, positions, group, options)
    finally:
        consumer.close()
        if producer is not None:
            producer.close()
    return report


def _select(
    consumer: Consumer,
    topic: str,
    selection: DeadLetterFilter,
    options: RedriveOptions,
    now_ms: int,
    positions: dict[int, int],
) -> Iterator[DeadLetter]:
    """The chosen dead letters; ``positions`` tracks the next offset to commit per partition.

    The caller commits ``positions`` only right after handling every letter handed out.
    """
    if options.refs:
        for ref in options.refs:
            if ref.partition not in list_partitions(consumer, ref.topic) or ref.offset >= log_end(
                consumer, ref.topic, ref.partition
            ):
                raise DeadLetterNotFoundError(f"no dead letter {ref}")
            with closing(
                _scan(consumer, {(ref.topic, ref.partition): ref.offset}, stop_after_first=True)
            ) as messages:
                for message in messages:
                    letter = _parse(message)
                    if letter.ref == ref:
                        yield letter
        return
    partitions = list_partitions(consumer, topic)
    starts = dict.fromkeys(((topic, p) for p in partitions), OFFSET_BEGINNING)
    if not options.from_beginning:
        committed = consumer.committed([KafkaTopicPartition(topic, p) for p in partitions], 10)
        starts.update({(topic, tp.partition): tp.offset for tp in committed if tp.offset >= 0})
    with closing(_scan(consumer, starts)) as messages:
        for message in messages:
            letter = _parse(message)
            # Committed only after the batch holding this letter was handled.
            positions[letter.ref.partition] = letter.ref.offset + 1
            if selection.matches(letter, now_ms):
                yield letter


def _commit(
    consumer: Consumer,
    topic: str,
    positions: dict[int, int],
    group: str | None,
    options: RedriveOptions,
) -> None:
    if group is None or options.dry_run or not positions:
        return
    offsets = [KafkaTopicPartition(topic, p, o) for p, o in positions.items()]
    consumer.commit(offsets=offsets, asynchronous=False)
