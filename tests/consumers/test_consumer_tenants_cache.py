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

    return TenantCache(
        directory.load, build, ttl_seconds=60.0, negative_ttl_seconds=5.0, clock=clock
    )


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


class ClosableSender(FakeSender):
    def __init__(self, token: str) -> None:
        self.token = token
        self.closed = False

    def close(self) -> None:
        self.closed = True


def _rotating_cache(directory: Directory, clock: Clock) -> TenantCache:
    def build(credentials: Mapping[str, Any]) -> ClosableSender:
        return ClosableSender(str(credentials["access_token"]))

    return TenantCache(directory.load, build, ttl_seconds=1.0, clock=clock)


def _rotate(directory: Directory, clock: Clock, token: str) -> None:
    directory.records[TENANT] = TenantRecord(
        TENANT, "t", None, {"pixel_id": "1", "access_token": token}
    )
    clock.now += 2  # past the TTL: the next get() sees the new credentials


def test_a_replaced_client_stays_open_until_the_batch_sending_with_it_settled() -> None:
    directory, clock = Directory(), Clock()
    cache = _rotating_cache(directory, clock)
    _rotate(directory, clock, "old")
    context = cache.get(TENANT)
    with cache.lease({TENANT: context}) as clients:  # the finisher thread sends with "old"
        old = clients[TENANT]
        assert isinstance(old, ClosableSender) and old.token == "old"
        _rotate(directory, clock, "new")
        new = cache.get(TENANT).client  # the loop thread prepares the next batch
        assert isinstance(new, ClosableSender) and new.token == "new"
        assert not old.closed  # still sending: closing it now was the race
    assert old.closed and not new.closed


def test_a_lease_takes_the_current_client_and_unleased_replacements_close_at_once() -> None:
    directory, clock = Directory(), Clock()
    cache = _rotating_cache(directory, clock)
    _rotate(directory, clock, "a")
    stale = cache.get(TENANT)  # a batch prepared with "a"
    first = stale.client
    _rotate(directory, clock, "b")
    second = cache.get(TENANT).client
    assert isinstance(first, ClosableSender) and first.closed  # no lease held it
    with cache.lease({TENANT: stale}) as clients:
        assert clients[TENANT] is second  # rotated since: the new token is used at once
        with cache.lease({TENANT: stale}) as again:  # two batches on one client
            assert again[TENANT] is second
        _rotate(directory, clock, "c")
        cache.get(TENANT)
        assert isinstance(second, ClosableSender) and not second.closed
    assert second.closed
    cache.close()
    assert all(isinstance(c, ClosableSender) and c.closed for c in (first, second))


def test_close_also_closes_retired_clients_still_leased() -> None:
    directory, clock = Directory(), Clock()
    cache = _rotating_cache(directory, clock)
    _rotate(directory, clock, "a")
    context = cache.get(TENANT)
    with cache.lease({TENANT: context}) as clients:
        _rotate(directory, clock, "b")
        latest = cache.get(TENANT).client
        cache.close()
        assert isinstance(latest, ClosableSender) and latest.closed
        leased = clients[TENANT]
        assert isinstance(leased, ClosableSender) and leased.closed
