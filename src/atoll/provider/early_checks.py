"""Checks of a job's files begun the moment the engine has kept them, before its sandbox is
released and its end recorded and heard: by the time the job's end reaches the check stage,
its report is ready or under way, and the consumer waits only for what is left of it.

A report begun early is used only for the files it was made for (the ``key`` its check
returns with it); other files, or a report not begun yet, are checked again in place.
:class:`ByJob` keeps what else a job's checks make ahead of its end (what they will read,
a check of its log begun as its sandbox exited) until the job comes for it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

#: checks run at once: each reads its files whole and uses a core
WORKERS = 2
T = TypeVar("T")
#: reports kept for jobs whose end has not come to take them (one that serves nothing never
#: does): the oldest are dropped
KEPT = 64


class EarlyChecks(Generic[T]):
    """Reports (what the checks made: ``T``) begun before a job's end is recorded, by job id,
    each taken once."""

    def __init__(self, workers: int = WORKERS, kept: int = KEPT) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="atoll-early-checks")
        self._pending: OrderedDict[str, Future[tuple[Hashable, T] | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._kept = kept

    def start(self, job_id: str, check: Callable[[], tuple[Hashable, T] | None]) -> None:
        """Begin ``check`` for the job on a thread of the pool's: it returns the report and
        what it was made for (for :meth:`take`), or None."""
        future = self._pool.submit(check)
        with self._lock:
            previous = self._pending.pop(job_id, None)
            self._pending[job_id] = future
            dropped = [previous] if previous is not None else []
            while len(self._pending) > self._kept:
                dropped.append(self._pending.popitem(last=False)[1])
        for old in dropped:
            old.cancel()

    def take(self, job_id: str, key: Hashable) -> T | None:
        """The job's report begun early for ``key``, waited for if under way; None when there
        is none to use (then the caller checks in place)."""
        with self._lock:
            future = self._pending.pop(job_id, None)
        if future is None or future.cancel():
            # none, or still queued behind other jobs' checks: the caller checks at once
            return None
        try:
            made = future.result()
        except Exception as exc:
            # checked again in place, where a failure holds the files
            log.warning("job %s: its early check failed (%s)", job_id, type(exc).__name__)
            return None
        if made is None or made[0] != key:
            return None
        return made[1]

    def pending(self) -> int:
        """Reports begun and not taken."""
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        """Drop what has not begun; what runs ends on its own."""
        with self._lock:
            self._pending.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)


class ByJob(Generic[T]):
    """One value per job, each taken once; at most ``kept`` (jobs that never come for theirs
    do not pile up: the oldest are dropped). Shared by threads."""

    def __init__(self, kept: int = KEPT) -> None:
        self._items: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()
        self._kept = kept

    def put(self, job_id: str, value: T) -> None:
        with self._lock:
            self._items.pop(job_id, None)
            self._items[job_id] = value
            while len(self._items) > self._kept:
                self._items.popitem(last=False)

    def take(self, job_id: str) -> T | None:
        with self._lock:
            return self._items.pop(job_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
