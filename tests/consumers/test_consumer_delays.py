"""Due times of the retry tiers, the pause book, backoff and the dead-letter limit."""

from __future__ import annotations

import pytest

from consumers.delays import (
    Backoff,
    PauseBook,
    TenantBlocks,
    due_ms_for,
    is_due,
    tier_delay_seconds,
)
from consumers.dlq_limit import DeadLetterLimit

DELAYS = (60.0, 300.0, 1800.0, 7200.0)


@pytest.mark.parametrize(
    ("next_attempt", "delay"), [(2, 60.0), (3, 300.0), (4, 1800.0), (5, 7200.0), (6, 7200.0)]
)
def test_the_delay_before_attempt_n_is_the_tier_of_attempt_n(
    next_attempt: int, delay: float
) -> None:
    assert tier_delay_seconds(DELAYS, next_attempt) == delay
    assert due_ms_for(DELAYS, next_attempt, 1_000) == 1_000 + int(delay * 1000)


def test_is_due() -> None:
    assert is_due(None, 5)
    assert is_due(5, 5)
    assert not is_due(6, 5)


def test_pause_book_resumes_only_what_is_due_and_forgets_revoked() -> None:
    book = PauseBook()
    book.pause(("t", 0), 10, due_ms=100)
    book.pause(("t", 1), 20, due_ms=200)
    book.pause(("t", 2), 30, due_ms=300)
    assert book.next_due_ms() == 100
    assert book.take_due(150) == [("t", 0)]
    book.drop([("t", 1)])
    assert book.take_due(250) == []
    assert ("t", 2) in book
    assert book.overdue(now_ms=10_000, margin_ms=1_000) == [("t", 2)]
    assert book.take_due(300) == [("t", 2)]
    assert len(book) == 0


def test_full_jitter_backoff_grows_to_the_cap_and_resets() -> None:
    backoff = Backoff(base_seconds=0.5, cap_seconds=4.0, rng=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5
    assert Backoff(rng=lambda: 0.0).next_delay() == 0.0


def test_tenant_blocks_expire() -> None:
    blocks = TenantBlocks()
    blocks.block("a", 1_000)
    blocks.block("a", 500)  # never shortened
    assert blocks.blocked_until("a", 900) == 1_000
    assert blocks.blocked_until("a", 1_000) is None
    assert blocks.blocked_until("b", 0) is None


def test_dead_letter_limit_counts_a_sliding_window() -> None:
    now = [0.0]
    limit = DeadLetterLimit(max_count=3, window_seconds=10, clock=lambda: now[0])
    limit.add(3)
    assert not limit.exceeded()
    limit.add()
    assert limit.exceeded()
    now[0] = 10.5
    assert not limit.exceeded()
    assert "limit 3" in str(limit.error())
