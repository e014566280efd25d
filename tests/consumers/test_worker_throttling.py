"""Throttling is not the event's fault: a throttled tenant waits, spends no attempt, and the
other tenants keep sending meanwhile."""

from __future__ import annotations

import time
import uuid

from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import build_codec
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames
from consumers import headers as h
from consumers.metrics import WorkerMetrics
from storage.models import EventStatus
from tests.support.emulator_fixture import Emulator
from tests.support.worker_fixtures import (
    event_rows,
    make_conversion,
    make_worker_config,
    produce_events,
    read_topic,
    running_worker,
    seed_tenant,
    wait_for,
)

CODEC = build_codec()
EVENTS_PER_TENANT = 20
BUDGET = 5  # attempts an event may spend: the first delivery and four tiers


def _statuses(sessions: sessionmaker[Session], tenant_id: uuid.UUID) -> list[str]:
    return [row.status for row in event_rows(sessions, tenant_id)]


def _sample(metrics: WorkerMetrics, name: str, tenant: uuid.UUID | None = None) -> float | None:
    labels = {"tenant": str(tenant)} if tenant is not None else {}
    return metrics.registry.get_sample_value(name, labels)


def test_sustained_throttling_dead_letters_nothing_and_other_tenants_keep_sending(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    throttled, pixel_a = seed_tenant(session_factory)
    other, pixel_b = seed_tenant(session_factory)
    # Code 4 (the production case) on every call of tenant A until cleared; Meta asks for
    # 0.3 s (estimated_time_to_regain_access 0.005 min) each time.
    fault = emulator.state.add_fault("rate_limit_4", pixel_id=pixel_a, retry_minutes=0.005)
    a_events = [make_conversion(throttled, n, "Lead") for n in range(EVENTS_PER_TENANT)]
    b_events = [make_conversion(other, n, "Lead") for n in range(EVENTS_PER_TENANT)]
    produce_events(kafka_config, topic_names.main, a_events + b_events, CODEC)
    config = make_worker_config(group_id, emulator.base_url)

    started = time.monotonic()
    with running_worker(kafka_config, topic_names, session_factory, config) as running:
        metrics = running.worker.metrics
        wait_for(
            lambda: _statuses(session_factory, other) == [EventStatus.SENT] * EVENTS_PER_TENANT,
            timeout=60,
            what="the other tenant's events sent",
        )
        # Throttled again and again, well past the five attempts that used to kill events.
        wait_for(lambda: fault.fired > 2 * BUDGET, timeout=90, what="sustained throttling")
        assert EventStatus.SENT not in _statuses(session_factory, throttled)
        assert EventStatus.DEAD not in _statuses(session_factory, throttled)
        wait_for(
            lambda: _sample(metrics, "capi_worker_tenant_paused_until_seconds", throttled),
            what="the paused-tenant gauge",
        )
        emulator.state.clear_faults()
        throttled_sends = fault.fired  # final: a cleared fault fires no more
        wait_for(
            lambda: _statuses(session_factory, throttled) == [EventStatus.SENT] * EVENTS_PER_TENANT,
            timeout=60,
            what="the throttled tenant's events sent once Meta lets it",
        )
        elapsed = time.monotonic() - started
        wait_for(
            lambda: _sample(metrics, "capi_worker_paused_tenants") == 0,
            what="no tenant paused any more",
        )
        assert _sample(metrics, "capi_worker_tenant_paused_until_seconds", throttled) is None
        counted = _sample(metrics, "capi_worker_tenant_throttled_sends_total", throttled)
        assert counted == throttled_sends
        assert _sample(metrics, "capi_worker_tenant_throttled_sends_total", other) is None
        deferred = _sample(metrics, "capi_worker_deferred_total")
        assert _sample(metrics, "capi_worker_dead_lettered_total") == 0

    assert read_topic(kafka_config, topic_names.dlq, timeout=1) == []
    received = [str(e.payload["event_id"]) for e in emulator.state.events(pixel_a)]
    assert sorted(received) == sorted(e.event_id for e in a_events)  # each once
    assert len(emulator.state.events(pixel_b)) == EVENTS_PER_TENANT
    rows = event_rows(session_factory, throttled)
    assert all(row.send_attempts >= 2 for row in rows)  # throttled sends reached Meta
    waits = read_topic(kafka_config, topic_names.retries[0], at_least=EVENTS_PER_TENANT)
    assert waits and {r.headers[h.ATTEMPT] for r in waits} == {"1"}  # no attempt spent
    assert {r.headers[h.ERROR_CLASS] for r in waits} == {"MetaRateLimitedError"}
    for tier in topic_names.retries[1:]:
        assert read_topic(kafka_config, tier, timeout=1) == []
    print(
        f"\nthrottling: {2 * EVENTS_PER_TENANT} events, {throttled_sends} throttled sends, "
        f"{int(deferred or 0)} deferrals, max send_attempts "
        f"{max(r.send_attempts for r in rows)}, 0 dead letters, {elapsed:.1f} s"
    )
