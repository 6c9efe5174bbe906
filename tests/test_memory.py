"""The allocator settings of the server process."""

from __future__ import annotations

import ctypes.util
import os
import platform
import subprocess
import sys

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


#: runs in a fresh interpreter: threads that allocate at the same time, the arena cap applied
#: before them (``first``) or only once they have run; prints the arenas glibc then has
_ARENAS_SCRIPT = """
import ctypes, sys, threading
from atoll import memory

def busy(n):
    barrier = threading.Barrier(n)
    def run():
        held = [bytearray(2000) for _ in range(100)]
        barrier.wait()
    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

if sys.argv[1] == "first":
    memory.limit_malloc_arenas()
busy(6)
memory.limit_malloc_arenas()
busy(6)
ctypes.CDLL(None).malloc_stats()
"""


def _fresh(script: str, arg: str, unset: str) -> subprocess.CompletedProcess[str]:
    """``script`` run with ``arg`` in a fresh interpreter, without the variable ``unset``
    (an operator's own setting, which would win over the one tried)."""
    env = {k: v for k, v in os.environ.items() if k != unset}
    return subprocess.run(
        [sys.executable, "-c", script, arg], env=env, capture_output=True, text=True, check=True
    )


def _arenas_after(order: str) -> int:
    # malloc_stats writes one "Arena N:" block per arena to stderr
    return _fresh(_ARENAS_SCRIPT, order, "MALLOC_ARENA_MAX").stderr.count("Arena ")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's")
def test_the_cap_holds_only_for_threads_started_after_it() -> None:
    """Why the server caps its arenas before it builds anything: glibc keeps the arenas of
    threads started before the cap and hands them to later threads."""
    assert _arenas_after("first") <= memory.ARENAS
    assert _arenas_after("late") > memory.ARENAS


#: runs in a fresh interpreter: frees an 8 MiB block (mapped: glibc then raises its threshold
#: to that size unless it was fixed), then allocates 1 MiB; prints whether that block was mapped
_THRESHOLD_SCRIPT = """
import ctypes, sys
from atoll import memory

info = ctypes.CDLL(None).mallinfo2
info.restype = memory._MallInfo2
if sys.argv[1] == "fixed":
    assert memory.fix_mmap_threshold()
big = bytearray(8 << 20)
del big
mapped = info().hblks
block = bytearray(1 << 20)
print(info().hblks - mapped)
"""


def _mapped_after_a_big_free(order: str) -> int:
    return int(_fresh(_THRESHOLD_SCRIPT, order, "MALLOC_MMAP_THRESHOLD_").stdout)


@pytest.mark.skipif(not memory.Trimmer().available, reason="needs glibc's mallinfo2")
def test_big_blocks_stay_out_of_the_heap_once_the_threshold_is_fixed() -> None:
    """Left to itself glibc serves a megabyte from the heap once it has freed a bigger mapped
    block; fixed, the threshold holds."""
    assert _mapped_after_a_big_free("fixed") == 1
    assert _mapped_after_a_big_free("dynamic") == 0


def test_an_operators_own_threshold_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert memory.fix_mmap_threshold() is False
