"""The allocator settings of the server process."""

from __future__ import annotations

import ctypes.util
import platform

import pytest

from atoll import memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_takes_the_arena_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert memory.limit_malloc_arenas() is True


def test_an_operators_own_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert memory.limit_malloc_arenas() is False


def test_without_a_c_library_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(ctypes.util, "find_library", lambda _: None)
    assert memory.limit_malloc_arenas() is False


@pytest.mark.skipif(not memory.Trimmer().available, reason="needs glibc's malloc_trim")
def test_memory_freed_in_the_heap_is_handed_back_past_the_threshold() -> None:
    """Blocks freed in the middle of the heap (kept by glibc) are counted free, and trimmed
    only past the threshold."""
    trimmer = memory.Trimmer(free_bytes=1 << 40)
    # many small blocks (below mmap's threshold, so from the heap), every other one freed
    blocks = [bytearray(2000) for _ in range(20_000)]
    del blocks[::2]
    assert trimmer.free() > 8 << 20
    assert trimmer.maybe_trim() is False
    trimmer.free_bytes = 1 << 20
    assert trimmer.maybe_trim() is True
    # handed back: nothing more to trim until more is freed
    assert trimmer.maybe_trim() is False
    del blocks[::2]
    assert trimmer.maybe_trim() is True


def test_without_malloc_trim_no_thread_is_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda _: None)
    assert memory.start_trimming() is None
