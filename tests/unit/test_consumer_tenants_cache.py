"""The worker's tenant cache: hits within the TTL, a short memory for tenants that cannot send."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from capi_stream.errors import ConfigurationError, UnknownTenantError
from consumers.pipeline.store import TenantRecord
from consumers.pipeline.tenants import TenantCache
from meta_capi.client import BatchOutcome
from meta_capi.server_event import ServerEvent

TENANT = uuid.UUID("00000000-0000-0000-0000-0000000000aa")
META = {"pixel_id": "1", "access_token": "x"}


class FakeSender:
    def send_events(self, events: Sequence[ServerEvent]) -> BatchOutcome:
        raise AssertionError("not sent in these tests")

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Directory:
    """The tenants table as the cache's loader sees it; counts lookups."""

    def __init__(self) -> None:
        self.records: dict[uuid.UUID, TenantRecord] = {}
        self.lookups = 0

    def load(self, tenant_id: uuid.UUID) -> TenantRecord | None:
        self.lookups += 1
        return self.records.get(tenant_id)


def _cache(directory: Directory, clock: Clock) -> TenantCache:
    def build(_credentials: Mapping[str, Any]) -> FakeSender:
        return FakeSender()

    return TenantCache(directory.load, build, ttl_seconds=60.0, negative_ttl_seconds=5.0,
                       clock=clock)  # fmt: skip


def test_a_known_tenant_is_looked_up_once_per_ttl() -> None:
    directory, clock = Directory(), Clock()
    directory.records[TENANT] = TenantRecord(
        TENANT, "t", "US", {"pixel_id": "1", "access_token": "x"}
    )
    cache = _cache(directory, clock)
    assert cache.get(TENANT).default_country == "US"
    clock.now += 59
    cache.get(TENANT)
    assert directory.lookups == 1
    clock.now += 2
    cache.get(TENANT)
    assert directory.lookups == 2


def test_an_unknown_tenant_created_later_is_seen_after_the_short_negative_ttl() -> None:
    directory, clock = Directory(), Clock()
    cache = _cache(directory, clock)
    with pytest.raises(UnknownTenantError):
        cache.get(TENANT)
    directory.records[TENANT] = TenantRecord(TENANT, "t", None, None)
    clock.now += 4
    with pytest.raises(UnknownTenantError):  # still remembered
        cache.get(TENANT)
    clock.now += 2
    with pytest.raises(ConfigurationError, match="set-meta"):  # now known, no Meta yet
        cache.get(TENANT)
    directory.records[TENANT] = TenantRecord(
        TENANT, "t", None, {"pixel_id": "1", "access_token": "x"}
    )
    clock.now += 6
    assert cache.get(TENANT).tenant_id == TENANT
    assert directory.lookups == 3
