"""Many byte patterns found in a text at once: a double-array Aho-Corasick automaton
(``daachorse``) where its wheel is there for the machine, else Rust's ``aho-corasick``
(``ahocorasick-rs``, a dependency on every machine).

The double array scans a megabyte against tens of thousands of patterns three times as fast
(each state in twelve bytes, so a large automaton stays in the processor's caches), and is
what a provider on Linux (x86-64), macOS or Windows gets; ``daachorse`` has no wheel for
Linux on ARM, where building it would need a Rust toolchain, so there the other serves, with
the same matches.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Protocol, cast

import ahocorasick_rs


class _Scan(Protocol):
    """What either automaton is asked: (start, end, pattern) of each match."""

    def find(self, haystack: bytes) -> list[tuple[int, int, int]]: ...
    def find_overlapping(self, haystack: bytes) -> list[tuple[int, int, int]]: ...


class _Rust:
    """Rust's ``aho-corasick``, answering as the double array does."""

    def __init__(self, patterns: list[bytes]) -> None:
        self._search = ahocorasick_rs.BytesAhoCorasick(patterns)

    def find(self, haystack: bytes) -> list[tuple[int, int, int]]:
        found = self._search.find_matches_as_indexes(haystack)
        return [(start, end, pattern) for pattern, start, end in found]

    def find_overlapping(self, haystack: bytes) -> list[tuple[int, int, int]]:
        found = self._search.find_matches_as_indexes(haystack, overlapping=True)
        return [(start, end, pattern) for pattern, start, end in found]


def _double_array() -> ModuleType | None:
    try:
        return importlib.import_module("daachorse")
    except ImportError:
        return None


_DOUBLE_ARRAY = _double_array()


class Patterns:
    """An automaton over ``patterns`` (distinct, non-empty); ``double_array`` chooses the
    implementation (default: the double array where it is installed)."""

    def __init__(self, patterns: list[bytes], double_array: bool | None = None) -> None:
        module = _DOUBLE_ARRAY if double_array is not False else None
        if double_array and module is None:
            raise RuntimeError("daachorse is not installed")
        self._scan: _Scan
        if module is not None:
            built = module.DoubleArrayAhoCorasick(patterns)
            # what is kept is the automaton read back from its bytes: the one built holds
            # what building it needed too (over three times the memory: 30 MB, not 8, for
            # 85,000 tokens), and reading it back takes a millisecond or two
            self._scan = cast(_Scan, module.DoubleArrayAhoCorasick.deserialize(built.serialize()))
        else:
            self._scan = _Rust(patterns)

    def overlapping(self, haystack: bytes) -> list[tuple[int, int, int]]:
        """(start, end, pattern) of every match, overlapping ones too."""
        return self._scan.find_overlapping(haystack)

    def earliest(self, haystack: bytes) -> list[tuple[int, int, int]]:
        """(start, end, pattern) of the matches found one after another: each the first to
        end, the search going on after it."""
        return self._scan.find(haystack)
