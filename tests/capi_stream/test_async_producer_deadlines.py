"""``AsyncConfirmedProducer``'s one deadline queue (no timer per send): a send nobody
acknowledges fails once its deadline passes, and settled sends leave nothing behind. No
broker is needed: nothing leaves the local queue."""

from __future__ import annotations

import asyncio

import pytest

from capi_stream.errors import DependencyUnavailableError
from capi_stream.kafka import async_producer
from capi_stream.kafka.async_producer import AsyncConfirmedProducer
from capi_stream.kafka.producer import OutgoingRecord

# Nothing listens on the discard port: records stay queued, no report ever comes.
NO_BROKER = {"bootstrap.servers": "127.0.0.1:9", "message.timeout.ms": 60_000}
RECORD = OutgoingRecord("capi.events", b"value", key=b"key")


def test_unacknowledged_sends_fail_at_their_deadline_and_leave_the_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(async_producer, "EXPIRY_SCAN_MARGIN_SECONDS", 0.0)
    producer = AsyncConfirmedProducer(NO_BROKER, timeout_seconds=0.05)

    async def main() -> list[BaseException | None]:
        sends = [producer.send(RECORD) for _ in range(3)]
        return await asyncio.gather(*sends, return_exceptions=True)

    try:
        results = asyncio.run(main())
        assert all(isinstance(r, DependencyUnavailableError) for r in results), results
        assert all("not acknowledged within 0.05s" in str(r) for r in results)
        assert not producer._deadlines
    finally:
        producer.close(0)


def test_a_cancelled_send_is_forgotten_without_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(async_producer, "EXPIRY_SCAN_MARGIN_SECONDS", 0.0)
    producer = AsyncConfirmedProducer(NO_BROKER, timeout_seconds=0.05)

    async def main() -> BaseException | None:
        cancelled = asyncio.ensure_future(producer.send(RECORD))
        await asyncio.sleep(0)
        cancelled.cancel()
        # A later send expires: by then the cancelled one's entry is gone too.
        (outcome,) = await asyncio.gather(producer.send(RECORD), return_exceptions=True)
        assert cancelled.cancelled()
        return outcome

    try:
        assert isinstance(asyncio.run(main()), DependencyUnavailableError)
        assert not producer._deadlines
    finally:
        producer.close(0)
