"""Caches bounded by the bytes their entries hold."""

from __future__ import annotations

import sys

from pydantic import BaseModel

from atoll.lru import SizedLRU, deep_size


class Row(BaseModel):
    name: str
    values: list[int]


def test_deep_size_counts_what_a_model_holds() -> None:
    small = Row(name="a", values=[])
    large = Row(name="a" * 10_000, values=list(range(1000, 2000)))
    assert deep_size(large) - deep_size(small) >= 10_000 + 1000 * sys.getsizeof(1000)
    shared = "s" * 5000
    assert deep_size([shared, shared]) < deep_size([shared, "t" * 5000])  # counted once


def test_the_cache_stays_under_its_byte_cap_whatever_its_entries_weigh() -> None:
    cap = 100_000
    cache: SizedLRU[str, Row] = SizedLRU(cap)
    for i in range(2000):
        cache.put(str(i), Row(name=str(i), values=list(range(i % 200))))
        assert cache.size <= cap
    # a count bound of a few hundred would have kept them all: bytes decide here
    assert 0 < len(cache) < 2000
    assert cache.get("1999") is not None
    assert cache.get("0") is None


def test_the_least_recently_used_go_first_and_sizes_add_up() -> None:
    cache: SizedLRU[str, str] = SizedLRU(3300, size_of=len)
    for key in "abc":
        cache.put(key, "x" * 900)
    assert cache.get("a") is not None  # now the most recent
    cache.put("d", "x" * 900)
    assert cache.get("b") is None
    assert {k for k in "acd" if cache.get(k) is not None} == {"a", "c", "d"}
    cache.pop("a")
    cache.put("c", "x" * 10)  # replaced, not counted twice
    assert cache.size == sum(len("x" * n) for n in (10, 900)) + 2 * (sys.getsizeof("c") + 100)


def test_an_entry_bigger_than_the_cache_is_not_kept() -> None:
    cache: SizedLRU[str, str] = SizedLRU(1000, size_of=len)
    cache.put("small", "x" * 100)
    cache.put("huge", "x" * 5000)
    assert cache.get("huge") is None
    assert cache.get("small") is not None
