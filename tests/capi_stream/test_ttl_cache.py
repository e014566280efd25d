"""``capi_stream.cache.TtlCache``: the TTL plumbing both tenant caches stand on."""

from __future__ import annotations

from capi_stream.cache import TtlCache


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_is_fresh_until_its_own_ttl_has_passed() -> None:
    clock = Ticks()
    cache: TtlCache[str, int | None] = TtlCache(clock=clock)
    cache.put("long", 1, 60.0)
    cache.put("short", None, 5.0)  # a negative answer, kept for less time

    clock.now = 104.9
    assert [cache.fresh(k) is not None for k in ("long", "short")] == [True, True]
    short = cache.fresh("short")
    assert short is not None and short.value is None
    clock.now = 105.0
    assert (cache.fresh("short"), cache.fresh("missing")) == (None, None)
    entry = cache.fresh("long")
    assert entry is not None and (entry.value, entry.expires_at) == (1, 160.0)


def test_put_and_fresh_can_use_a_moment_taken_before_a_slow_load() -> None:
    clock = Ticks()
    cache: TtlCache[str, int] = TtlCache(clock=clock)
    started = cache.now()
    clock.now = 130.0  # the load took 30 s
    cache.put("k", 1, 60.0, now=started)

    assert cache.fresh("k", now=159.0) is not None
    assert cache.fresh("k") is not None
    clock.now = 160.0
    assert cache.fresh("k") is None


def test_reaching_max_entries_starts_over_instead_of_growing() -> None:
    cache: TtlCache[int, int] = TtlCache(clock=Ticks(), max_entries=3)
    for key in range(3):
        cache.put(key, key, 60.0)
    cache.put(3, 3, 60.0)

    assert [cache.fresh(k) is not None for k in range(4)] == [False, False, False, True]


def test_clear_forgets_everything() -> None:
    cache: TtlCache[str, int] = TtlCache(clock=Ticks())
    cache.put("k", 1, 60.0)
    cache.clear()
    assert cache.fresh("k") is None
