"""Pure pieces of the analyst tools: the replay's dead-letter index, time ranges, help
sentences, timestamps shown by `dlq show`, and the redrive summary line."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import click
import pytest

from capi_stream.kafka.producer import OutgoingRecord
from consumers import headers as hop
from ops.cli import first_sentence
from ops.cli.dlq_command import describe_redrive, format_instant
from ops.cli.options import check_range, parse_instant
from ops.dlq.records import RecordRef
from ops.dlq.redrive import RedriveItem, RedriveReport
from ops.replay.dead_letters import DeadLetterIndex

TENANT = uuid.uuid4()


def forward(topic: str, event_id: str | None, tenant: uuid.UUID = TENANT) -> OutgoingRecord:
    headers = [(hop.TENANT_ID, str(tenant).encode())]
    if event_id is not None:
        headers.append((hop.EVENT_ID, event_id.encode()))
    return OutgoingRecord(topic, b"v", headers=headers)


def test_the_index_drops_every_forward_of_an_event_already_dead_lettered() -> None:
    index = DeadLetterIndex.from_headers(
        [(str(TENANT), "old"), (None, "no-tenant"), ("not-a-uuid", "x"), (str(TENANT), None)]
    )
    assert index.keys == {(TENANT, "old")}
    split = index.split(
        [
            forward("dlq", "old"),
            forward("retry.1", "old"),
            forward("dlq", "new"),
            forward("retry.1", "other"),
            forward("dlq", None),
        ],
        dlq_topic="dlq",
    )
    assert split.dropped == 2
    assert [(r.topic, hop.header_map(r.headers).get(hop.EVENT_ID)) for r in split.kept] == [
        ("dlq", "new"),
        ("retry.1", "other"),
        ("dlq", None),
    ]
    assert split.new_dead == {(TENANT, "new")}
    assert (TENANT, "new") not in index  # only once produced
    index.add(split.new_dead)
    assert index.split([forward("dlq", "new")], dlq_topic="dlq").dropped == 1


NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (NOW - timedelta(hours=2), NOW - timedelta(hours=2), "must be after --from"),
        (NOW - timedelta(hours=1), NOW - timedelta(hours=2), "must be after --from"),
        (NOW + timedelta(seconds=1), NOW + timedelta(hours=1), "is in the future"),
    ],
)
def test_empty_and_future_ranges_are_refused(start: datetime, end: datetime, message: str) -> None:
    with pytest.raises(click.BadParameter, match=message):
        check_range(start, end, NOW)


def test_a_past_range_and_one_reaching_past_now_are_fine() -> None:
    check_range(NOW - timedelta(hours=2), NOW - timedelta(hours=1), NOW)
    check_range(NOW - timedelta(hours=1), NOW + timedelta(days=1), NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28", datetime(2026, 11, 28, tzinfo=UTC)),
        ("2026-11-28T08:00", datetime(2026, 11, 28, 8, tzinfo=UTC)),
        ("2026-11-28T08:00Z", datetime(2026, 11, 28, 8, tzinfo=UTC)),
        ("2026-11-28T08:00+01:00", datetime(2026, 11, 28, 7, tzinfo=UTC)),
    ],
)
def test_the_formats_the_help_names_are_accepted(text: str, expected: datetime) -> None:
    param = click.Option(["--from"])
    assert parse_instant(click.Context(click.Command("x")), param, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Add a tenant.", "Add a tenant."),
        (
            "Show a dead letter's headers and decoded event (hashed data only).\n\nTARGET is ...",
            "Show a dead letter's headers and decoded event (hashed data only).",
        ),
        (
            "Re-process the events of a time range [--from, --to).\n\n    More.",
            "Re-process the events of a time range [--from, --to).",
        ),
        ("Compare e.g. this vs. that. Second sentence.", "Compare e.g. this vs. that."),
        ("No full stop", "No full stop"),
    ],
)
def test_first_sentence_is_whole(text: str, expected: str) -> None:
    assert first_sentence(text) == expected


def test_dlq_timestamps_read_as_iso_8601_utc() -> None:
    assert format_instant(1796599941815) == "2026-12-06T23:32:21.815Z"  # date -u -d @1796599941


def test_the_redrive_summary_says_what_a_dry_run_would_do() -> None:
    def item(outcome: str) -> RedriveItem:
        return RedriveItem(RecordRef("dlq", 0, 1), outcome, None, "e", str(TENANT))

    dry = RedriveReport("g", [item("dry-run"), item("dry-run"), item("refused")], scanned=3)
    line = describe_redrive(dry, dry_run=True, actor="ana")
    assert line.startswith("dry run, nothing sent: would-redrive=2 would-refuse=1 ")
    assert " redriven=" not in line and "dry-run=" not in line
    real = RedriveReport("g", [item("redriven")], scanned=1)
    assert describe_redrive(real, dry_run=False, actor="ana").startswith("redriven=1 refused=0 ")
