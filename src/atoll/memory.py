"""The server process's memory allocator settings.

glibc gives threads that allocate at the same moment arenas of their own (up to eight per
core), and memory freed in one arena serves only that arena: a server whose worker threads
take turns through the job-end and status paths fragments the lot, and its resident memory
creeps up with the jobs it has run. Its threads mostly run Python, one at a time under the
interpreter's lock, so a couple of arenas cost no speed. Measured with ``bench/bench_growth.py``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

#: glibc's ``mallopt`` parameter for the most arenas (malloc.h)
M_ARENA_MAX = -8
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas for the threads started from now on; True if applied. An
    operator's own ``MALLOC_ARENA_MAX`` wins, and a libc without ``mallopt`` is left alone."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
