"""The outcome book on fakes of its services (forwarding, Meta, tenants): how each send
result is routed, how blocked tenants wait, how a rotated token is forgiven."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from capi_stream.kafka.producer import OutgoingRecord
from consumers.delays import TenantBlocks
from consumers.headers import Failure
from consumers.pipeline.items import BatchReport, Item, PipelineOptions
from consumers.pipeline.outcomes import OutcomeBook, OutcomeServices
from consumers.pipeline.prepare import prepare_event
from consumers.pipeline.sender import ConcurrentSender
from consumers.pipeline.store import TenantRecord
from consumers.pipeline.tenants import TenantCache
from meta_capi.errors import (
    MetaAPIError,
    MetaCredentialsError,
    MetaPermanentError,
    MetaRateLimitedError,
)
from storage.models import EventStatus
from tests.support.fakes import (
    CREDENTIALS,
    START,
    TENANT,
    TOPICS,
    Clock,
    ScriptedMeta,
    build_event,
    incoming,
)

START_MS = int(START.timestamp() * 1000)
TOKEN_REFUSED = MetaCredentialsError("invalid token", code=190, status_code=401)


class RecordingForward:
    """The ``Forward`` seam: remembers each hop instead of encoding it."""

    def __init__(self) -> None:
        self.hops: list[dict[str, Any]] = []

    def __call__(
        self,
        item: Item,
        *,
        topic: str,
        attempt: int,
        due_ms: int | None,
        failure: Failure,
        now_ms: int,
    ) -> OutgoingRecord:
        self.hops.append(
            {
                "offset": item.incoming.offset,
                "topic": topic,
                "attempt": attempt,
                "due_ms": due_ms,
                "error_class": failure.error_class,
            }
        )
        return OutgoingRecord(topic, item.incoming.value, key=item.incoming.key)


class Tenant:
    """A tenant whose credentials the test can rotate; each credential set gets its own Meta."""

    def __init__(self, metas: Mapping[str, ScriptedMeta]) -> None:
        self.token = "x"
        self.metas = metas
        self.cache = TenantCache(self.load, self.build)

    def load(self, tenant_id: uuid.UUID) -> TenantRecord:
        return TenantRecord(tenant_id, "t", "US", {**CREDENTIALS, "capi_access_token": self.token})

    def build(self, credentials: Mapping[str, Any]) -> ScriptedMeta:
        return self.metas[str(credentials["capi_access_token"])]


def _book(tenant: Tenant, forward: RecordingForward, clock: Clock) -> OutcomeBook:
    services = OutcomeServices(
        clock=clock,
        forward=forward,
        topics=TOPICS,
        blocks=TenantBlocks(),
        tenants=tenant.cache,
        sender=ConcurrentSender(1),
        options=PipelineOptions((60.0, 300.0, 1800.0, 7200.0), 60.0),
    )
    return OutcomeBook(services, BatchReport(), clock())


def _queue(book: OutcomeBook, tenant: Tenant, count: int, attempt: int = 1) -> list[Item]:
    context = tenant.cache.get(TENANT)
    items = []
    for n in range(count):
        event = build_event(n, START - timedelta(hours=1))
        prepared = prepare_event(event, None, default_country="US", now=START)
        assert prepared.server_event is not None
        item = Item(incoming(b"v", n, attempt), event, context, uuid.uuid4())
        book.queue(item, prepared.server_event)
        items.append(item)
    return items


def test_a_blocked_tenant_is_not_called_and_its_events_wait_for_the_block_on_a_tier() -> None:
    meta, forward, clock = ScriptedMeta(), RecordingForward(), Clock()
    tenant = Tenant({"x": meta})
    book = _book(tenant, forward, clock)
    _queue(book, tenant, 2, attempt=3)
    until = START_MS + 20 * 60_000  # 20 minutes: the 30-minute tier covers it

    book.send_queued({TENANT: until})

    assert meta.requests == 0
    assert [(hop["topic"], hop["attempt"], hop["due_ms"]) for hop in forward.hops] == [
        ("t.retry.3", 3, until)
    ] * 2
    assert [(o.status, o.attempt) for o in book.outcomes] == [(EventStatus.RETRYING, 0)] * 2
    assert (book.report.deferred, book.report.deferred_by_tenant) == (2, {str(TENANT): 2})
    book.services.sender.close()


def test_meta_throttling_blocks_the_tenant_for_the_wait_meta_asks_and_keeps_the_attempt() -> None:
    throttled = MetaRateLimitedError("(#4) limit", code=4, retry_after_seconds=90)
    meta, forward, clock = ScriptedMeta(lambda _e: throttled), RecordingForward(), Clock()
    tenant = Tenant({"x": meta})
    book = _book(tenant, forward, clock)
    _queue(book, tenant, 1, attempt=5)

    book.send_queued({})

    until = START_MS + 90_000
    assert forward.hops == [
        {
            "offset": 0,
            "topic": "t.retry.2",
            "attempt": 5,
            "due_ms": until,
            "error_class": "MetaRateLimitedError",
        }
    ]
    assert book.blocked_tenants([TENANT]) == {TENANT: until}
    assert book.report.throttled_by_tenant == {str(TENANT): 1}
    assert book.report.paused_tenants == {str(TENANT): until}
    book.services.sender.close()


def test_a_token_refused_after_the_tenant_rotated_it_is_sent_again_at_once_with_its_attempt() -> (
    None
):
    old, new = ScriptedMeta(lambda _e: TOKEN_REFUSED), ScriptedMeta()
    forward, clock = RecordingForward(), Clock()
    tenant = Tenant({"x": old, "y": new})
    book = _book(tenant, forward, clock)
    _queue(book, tenant, 1, attempt=2)
    tenant.token = "y"  # rotated (and the old token revoked) after the batch was prepared

    book.send_queued({})

    assert [(hop["topic"], hop["attempt"], hop["due_ms"]) for hop in forward.hops] == [
        ("t.retry.1", 2, START_MS)
    ]
    assert (book.report.deferred, book.report.dead_lettered) == (1, 0)
    assert tenant.cache.get(TENANT).client is new
    book.services.sender.close()


def test_a_token_refused_without_a_rotation_dead_letters_the_events() -> None:
    meta, forward, clock = ScriptedMeta(lambda _e: TOKEN_REFUSED), RecordingForward(), Clock()
    tenant = Tenant({"x": meta})
    book = _book(tenant, forward, clock)
    _queue(book, tenant, 2, attempt=1)

    book.send_queued({})

    assert [(hop["topic"], hop["error_class"]) for hop in forward.hops] == [
        ("t.dlq", "MetaCredentialsError")
    ] * 2
    assert [(o.status, o.attempt) for o in book.outcomes] == [(EventStatus.DEAD, 1)] * 2
    book.services.sender.close()


def test_only_the_refused_events_of_a_request_are_routed_the_others_are_sent() -> None:
    refused: MetaAPIError = MetaPermanentError("invalid parameter", code=100, status_code=400)
    events = {build_event(1, START - timedelta(hours=1)).event_id}
    meta = ScriptedMeta(lambda e: refused if e.event_id in events else None)
    forward, clock = RecordingForward(), Clock()
    tenant = Tenant({"x": meta})
    book = _book(tenant, forward, clock)
    _queue(book, tenant, 3)

    book.send_queued({})

    assert [hop["offset"] for hop in forward.hops] == [1]
    assert book.report.sent == 2
    assert sorted(o.status for o in book.outcomes) == sorted(
        [EventStatus.SENT, EventStatus.SENT, EventStatus.DEAD]
    )
    book.services.sender.close()


def test_a_dead_letter_before_any_send_records_no_attempt() -> None:
    forward, clock = RecordingForward(), Clock()
    tenant = Tenant({"x": ScriptedMeta()})
    book = _book(tenant, forward, clock)
    item = Item(incoming(b"v", 4, attempt=3), row_id=uuid.uuid4())

    book.dead_letter(item, TOKEN_REFUSED, attempt=3)

    assert item.done
    assert [(o.status, o.attempt) for o in book.outcomes] == [(EventStatus.DEAD, 0)]
    assert [(hop["topic"], hop["attempt"], hop["due_ms"]) for hop in forward.hops] == [
        ("t.dlq", 3, None)
    ]
    assert book.report.by_tenant == {("unknown", "dead_lettered"): 1}
