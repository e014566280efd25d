"""Concurrent sends: one Meta call per tenant of a batch, tenants in parallel threads.

``MetaCAPIClient.send_events`` never raises for Meta's answers (it maps every event to sent
or to its error) and splits lists over 1,000 events itself, so each tenant's events go in
one call. A bug-level exception of one tenant's call becomes that tenant's events' error.

One sender serves every batch in flight (``consumers.inflight``): its pool bounds the
worker's concurrent Meta requests across batches and tenants, at ``max_workers`` plus one
per finisher thread (a batch of a single tenant sends on its finisher thread).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from consumers.pipeline.tenants import MetaSender
from meta_capi.client import BatchOutcome
from meta_capi.server_event import ServerEvent


@dataclass(frozen=True, slots=True)
class TenantSend:
    """The outcome of one tenant's call: ``outcome`` or ``error``, and how long it took."""

    outcome: BatchOutcome | None
    error: BaseException | None
    seconds: float


def _send(client: MetaSender, events: Sequence[ServerEvent]) -> TenantSend:
    started = time.perf_counter()
    try:
        outcome = client.send_events(events)
    except Exception as exc:  # a bug or an unmapped library error: route it, don't crash
        return TenantSend(None, exc, time.perf_counter() - started)
    return TenantSend(outcome, None, time.perf_counter() - started)


class ConcurrentSender:
    """Sends each tenant's events with that tenant's own client, ``max_workers`` at a time."""

    def __init__(self, max_workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="meta-send")

    def send(
        self, work: Mapping[uuid.UUID, tuple[MetaSender, Sequence[ServerEvent]]]
    ) -> dict[uuid.UUID, TenantSend]:
        if len(work) == 1:  # the common case: no thread hop
            ((tenant_id, (client, events)),) = work.items()
            return {tenant_id: _send(client, events)}
        futures: dict[uuid.UUID, Future[TenantSend]] = {
            tenant_id: self._pool.submit(_send, client, events)
            for tenant_id, (client, events) in work.items()
        }
        return {tenant_id: future.result() for tenant_id, future in futures.items()}

    def close(self) -> None:
        self._pool.shutdown(wait=True)
