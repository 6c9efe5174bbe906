"""The chain's byte-bounded LRU cache."""

from __future__ import annotations

from atoll.chain.kvcache import ByteBoundedLRU, entry_size


def test_evicts_least_recently_used_to_stay_under_its_bytes() -> None:
    one = entry_size(b"k0", b"x" * 100)
    cache = ByteBoundedLRU(3 * one)
    for i in range(3):
        cache.put(f"k{i}".encode(), b"x" * 100)
    assert cache.get(b"k0") == b"x" * 100  # k0 is now the most recent
    cache.put(b"k3", b"x" * 100)
    assert cache.get(b"k1") is None and cache.get(b"k0") is not None
    assert cache.size <= 3 * one and len(cache) == 3


def test_a_big_value_evicts_by_its_size_and_an_oversized_one_is_not_kept() -> None:
    small = entry_size(b"a", b"y")
    cache = ByteBoundedLRU(10 * small + 1000)
    for i in range(10):
        cache.put(bytes([i]), b"y")
    cache.put(b"big", b"z" * 900)
    # one small entry (the oldest) made room for it
    assert cache.size <= cache.max_bytes and len(cache) == 10
    assert cache.get(bytes([0])) is None and cache.get(bytes([1])) == b"y"
    cache.put(b"huge", b"z" * 100_000)
    assert cache.get(b"huge") is None and cache.get(b"big") is not None


def test_replacing_and_popping_keep_the_count_exact() -> None:
    cache = ByteBoundedLRU(10_000)
    cache.put(b"a", b"1" * 10)
    cache.put(b"a", b"1" * 50)
    assert cache.size == entry_size(b"a", b"1" * 50)
    cache.pop(b"a")
    cache.pop(b"missing")
    assert cache.size == 0 and len(cache) == 0
