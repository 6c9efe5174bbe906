"""The server process's memory allocator settings.

glibc gives threads that allocate at the same moment arenas of their own (up to eight per
core), and memory freed in one arena serves only that arena: a server whose worker threads
take turns through the job-end and status paths fragments the lot, and its resident memory
creeps up with the jobs it has run. Its threads mostly run Python, one at a time under the
interpreter's lock, so a couple of arenas cost no speed. Measured with ``bench/bench_growth.py``.

glibc also moves its threshold for serving a block with a mapping of its own (rather than
from the heap) up to the largest such block freed so far: once the server has freed a few
megabytes at once (a compaction's sets, a file read in 1 MiB pieces, even a JSON table read at
import), blocks of that size come from the heap, where the long-lived ones allocated around
them keep the heap from shrinking after they are freed. :func:`fix_mmap_threshold` holds the
threshold where it starts, which also stops glibc from raising its trim threshold with it.

Even so, what a burst of jobs frees stays in the allocator's free lists, in the middle of the
heap, where glibc does not hand it back by itself: a thread (:func:`start_trimming`) checks
once a second how much lies free and, past a few megabytes, has ``malloc_trim`` return it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

#: glibc's ``mallopt`` parameter for the most arenas (malloc.h)
M_ARENA_MAX = -8
ARENAS = 2


#: glibc's ``mallopt`` parameter for the size from which a block gets a mapping of its own
M_MMAP_THRESHOLD = -3
#: that size: glibc's own starting point is half of it, and asyncio reads a socket into
#: 256 KiB blocks (cut down at once to what was read), mapped then like every bigger block
MMAP_THRESHOLD = 256 << 10


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas for the threads started from now on; True if applied. An
    operator's own ``MALLOC_ARENA_MAX`` wins, and a libc without ``mallopt`` is left alone."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    return _mallopt(M_ARENA_MAX, arenas)


def fix_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Serve blocks of ``size`` bytes and more with mappings of their own, whatever the process
    frees later (glibc would raise the threshold); True if applied. An operator's own
    ``MALLOC_MMAP_THRESHOLD_`` wins."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    return _mallopt(M_MMAP_THRESHOLD, size)


def tune_malloc() -> None:
    """Cap the arenas and fix the mmap threshold, as a server does before its threads start."""
    limit_malloc_arenas()
    fix_mmap_threshold()


def _mallopt(param: int, value: int) -> bool:
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(param, value))


#: free bytes in the allocator's arenas past which they are handed back to the system
TRIM_FREE_BYTES = 4 << 20
#: bytes freed since the last trim that make another worth it
TRIM_AGAIN_BYTES = 1 << 20
#: seconds between two looks at the free bytes
TRIM_INTERVAL_S = 1.0


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (2.33 and later): every field a ``size_t``."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


class Trimmer:
    """Hands the allocator's free memory back to the system when enough of it lies free."""

    def __init__(self, free_bytes: int = TRIM_FREE_BYTES) -> None:
        self.free_bytes = free_bytes
        #: the fewest free bytes seen since the last trim
        self._low = 0
        libc = _libc()
        self._trim = getattr(libc, "malloc_trim", None)
        self._info = getattr(libc, "mallinfo2", None)
        if self._trim is not None:
            self._trim.argtypes = [ctypes.c_size_t]
            self._trim.restype = ctypes.c_int
        if self._info is not None:
            self._info.argtypes = []
            self._info.restype = _MallInfo2

    @property
    def available(self) -> bool:
        return self._trim is not None and self._info is not None

    def free(self) -> int:
        """Bytes free in the allocator's arenas (0 where glibc does not say)."""
        return int(self._info().fordblks) if self._info is not None else 0

    def maybe_trim(self) -> bool:
        """Trim if more than :attr:`free_bytes` lie free and some of it was freed since the
        last trim (a trim leaves the bytes counted free, handed back): True if it trimmed."""
        if not self.available:
            return False
        free = self.free()
        # what was reused since the last trim and is free again counts as newly freed
        self._low = min(self._low, free)
        if free <= self.free_bytes or free - self._low < TRIM_AGAIN_BYTES:
            return False
        assert self._trim is not None
        self._trim(0)
        self._low = free
        return True


def start_trimming(interval: float = TRIM_INTERVAL_S) -> threading.Thread | None:
    """A daemon thread that trims (:class:`Trimmer`) every ``interval`` seconds; None where the
    C library has no ``malloc_trim``/``mallinfo2`` (not glibc 2.33 or later)."""
    trimmer = Trimmer()
    if not trimmer.available:
        return None

    def run() -> None:
        # ctypes lets go of the interpreter's lock for the call: the other threads run on
        while True:
            threading.Event().wait(interval)
            trimmer.maybe_trim()

    thread = threading.Thread(target=run, name="atoll-malloc-trim", daemon=True)
    thread.start()
    return thread
