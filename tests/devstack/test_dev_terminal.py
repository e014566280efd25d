"""The dev terminal's lines: why an event retries or is dead-lettered, which webhook was refused."""

from __future__ import annotations

import logging

from rich.text import Text

from devstack import terminal


def format_line(entry: logging.LogRecord) -> str | None:
    """The line as the terminal shows it (markup rendered)."""
    line = terminal.format_line(entry)
    return None if line is None else Text.from_markup(line).plain


def record(message: str, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    entry = logging.LogRecord(
        "consumers.pipeline.outcomes", level, __file__, 1, message, None, None
    )
    entry.__dict__.update(extra)
    return entry


def test_a_retry_names_event_source_next_tier_and_reason() -> None:
    line = format_line(
        record(
            "retrying",
            logging.DEBUG,
            record="capi.events[2]@7",
            event_id="e-1",
            source="stripe",
            error_class="MetaRetryableError",
            reason="[unknown_code] Meta says no",
            next_topic="capi.events.retry.1",
        )
    )
    assert line is not None
    assert "event e-1 (stripe) from capi.events[2]@7 to capi.events.retry.1" in line
    # Square brackets in a reason are shown, not taken for markup.
    assert "MetaRetryableError: [unknown_code] Meta says no" in line


def test_a_dead_letter_without_a_decoded_event_still_says_where_and_why() -> None:
    line = format_line(
        record("dead-lettered", logging.WARNING, record="t[0]@1", error_class="DecodeError")
    )
    assert line is not None
    assert "event (undecodable) (?) from t[0]@1 to the DLQ: DecodeError: DecodeError" in line


def test_a_rejected_webhook_shows_status_and_reason_and_quiet_records_stay_quiet() -> None:
    line = format_line(
        record("webhook rejected", logging.DEBUG, source="ghl", status=401, reason="bad sig")
    )
    assert line is not None and "webhook rejected ghl answered 401: bad sig" in line
    assert format_line(record("batch done", logging.INFO)) is None
    warning = format_line(record("broker down", logging.WARNING))
    assert warning is not None and "broker down" in warning
