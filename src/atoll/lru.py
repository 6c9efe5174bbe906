"""A least-recently-used cache bounded by the bytes its entries hold, not by their count.

A count bound holds as many bytes as its largest entries: a job with many result files makes
a receipt or a review many times the usual size, and 256 of them would be a server's whole
memory goal. Entries are weighed once, when stored, with :func:`deep_size`.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: an ordered dict's slot and link per entry, beyond the key's and value's own objects
ENTRY_OVERHEAD = 100


def deep_size(obj: object) -> int:
    """Bytes of ``obj`` and what it holds: containers, ``__dict__`` and ``__slots__`` objects
    (Pydantic models, dataclasses), each object counted once. Classes, functions and modules
    are shared, not held, and are not counted."""
    seen: set[int] = set()
    stack: list[Any] = [obj]
    total = 0
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, _SHARED):
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, list | tuple | set | frozenset):
            stack.extend(o)
        elif not isinstance(o, str | bytes | bytearray | int | float | bool):
            d = getattr(o, "__dict__", None)
            if d is not None:
                stack.append(d)
            for name in getattr(type(o), "__slots__", ()):
                value = getattr(o, name, None)
                if value is not None:
                    stack.append(value)
    return total


_SHARED = (type, type(sys), type(deep_size), type(len))


class SizedLRU(Generic[K, V]):
    """At most ``max_bytes`` of entries (as ``size_of`` weighs them), least recently used out
    first. Not thread-safe: callers that share one lock around it."""

    def __init__(self, max_bytes: int, size_of: Callable[[V], int] = deep_size) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._size_of = size_of
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        found = self._items.get(key)
        if found is None:
            return None
        self._items.move_to_end(key)
        return found[0]

    def put(self, key: K, value: V) -> None:
        self.pop(key)
        cost = self._size_of(value) + sys.getsizeof(key) + ENTRY_OVERHEAD
        if cost > self.max_bytes:
            return  # bigger than the whole cache: not worth evicting everything for
        self._items[key] = (value, cost)
        self.size += cost
        while self.size > self.max_bytes:
            _old, (_value, old_cost) = self._items.popitem(last=False)
            self.size -= old_cost

    def pop(self, key: K) -> None:
        found = self._items.pop(key, None)
        if found is not None:
            self.size -= found[1]
