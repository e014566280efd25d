"""The per-tenant throttling metrics: throttled sends, held-back events, paused tenants."""

from __future__ import annotations

from consumers.delays import TenantBlocks
from consumers.metrics import WorkerMetrics
from consumers.pipeline.processor import BatchReport

PAUSED_UNTIL = "capi_worker_tenant_paused_until_seconds"


def _value(metrics: WorkerMetrics, name: str, tenant: str | None = None) -> float | None:
    return metrics.registry.get_sample_value(name, {"tenant": tenant} if tenant else {})


def test_throttling_is_counted_per_tenant_and_the_paused_gauge_follows_the_blocks() -> None:
    metrics = WorkerMetrics()
    metrics.observe_batch(
        BatchReport(throttled_by_tenant={"a": 1}, paused_tenants={"a": 1_800_000_000_500})
    )
    metrics.observe_batch(
        BatchReport(deferred_by_tenant={"a": 7}, paused_tenants={"a": 1_800_000_000_500})
    )
    assert _value(metrics, "capi_worker_tenant_throttled_sends_total", "a") == 1
    assert _value(metrics, "capi_worker_tenant_deferred_total", "a") == 7
    assert _value(metrics, PAUSED_UNTIL, "a") == 1_800_000_000.5
    assert _value(metrics, "capi_worker_paused_tenants") == 1

    metrics.observe_batch(BatchReport())  # a batch that sent nothing says nothing of blocks
    assert _value(metrics, "capi_worker_paused_tenants") == 1

    metrics.observe_batch(BatchReport(paused_tenants={"b": 1_800_000_001_000}))
    assert _value(metrics, PAUSED_UNTIL, "a") is None  # a's block ended: label removed
    assert _value(metrics, PAUSED_UNTIL, "b") == 1_800_000_001.0
    metrics.observe_batch(BatchReport(paused_tenants={}))
    assert _value(metrics, "capi_worker_paused_tenants") == 0
    assert _value(metrics, "capi_worker_tenant_throttled_sends_total", "b") is None


def test_active_blocks_are_those_not_yet_over() -> None:
    blocks = TenantBlocks()
    blocks.block("a", 2_000)
    blocks.block("b", 1_000)
    blocks.block("a", 1_500)  # an earlier end never shortens a block
    assert blocks.active(999) == {"a": 2_000, "b": 1_000}
    assert blocks.active(1_000) == {"a": 2_000}
    assert blocks.active(2_000) == {}
