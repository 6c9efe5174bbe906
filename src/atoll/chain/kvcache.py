"""A least-recently-used cache of byte strings, bounded by the bytes it holds."""

from __future__ import annotations

import sys
from collections import OrderedDict

#: what an entry costs beyond its key's and value's own objects: the ordered dict's slot
#: and link (measured on CPython 3.11-3.12, rounded up)
ENTRY_OVERHEAD = 100


def entry_size(key: bytes, value: bytes) -> int:
    return sys.getsizeof(key) + sys.getsizeof(value) + ENTRY_OVERHEAD


class ByteBoundedLRU:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[bytes, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: bytes) -> bytes | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def peek(self, key: bytes) -> bytes | None:
        """The value of ``key`` without making it the most recently used."""
        return self._items.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.pop(key)
        cost = entry_size(key, value)
        if cost > self.max_bytes:
            return  # bigger than the whole cache: not worth evicting everything for
        self._items[key] = value
        self.size += cost
        while self.size > self.max_bytes:
            old_key, old_value = self._items.popitem(last=False)
            self.size -= entry_size(old_key, old_value)

    def pop(self, key: bytes) -> None:
        value = self._items.pop(key, None)
        if value is not None:
            self.size -= entry_size(key, value)
