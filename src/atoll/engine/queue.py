"""Per-environment queues: each environment runs at most ``max_jobs`` jobs at once, the rest
wait in its queue in order, and a job that waits longer than the environment's
``queue_max_wait`` expires. No polling: a job starts when a slot frees (a pool's own queue),
and expiries are kept in one heap that a single thread sleeps on until the earliest is due.

A job that starts leaves its deadline behind in the heap (removing from the middle of a heap
costs a scan), to be skipped when it comes due. With the default wait of ten minutes, a busy
server would hold ten minutes of started jobs there: once they outnumber the waiting ones,
the heap is rebuilt from the waiting jobs alone, so it follows the queue, not the job rate.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from atoll.models.environment import Environment

#: stale deadlines the heap may hold beyond twice the waiting ones before it is rebuilt
STALE_SLACK = 64


class EnvironmentQueues:
    def __init__(
        self,
        environments: list[Environment],
        run: Callable[[str], None],
        expire: Callable[[str], None],
    ) -> None:
        self._run = run
        self._expire = expire
        self._pools = {
            e.id: ThreadPoolExecutor(e.max_jobs, thread_name_prefix=f"atoll-{e.id}")
            for e in environments
        }
        self._deadlines: list[tuple[float, str]] = []
        #: the jobs queued and not yet started or expired → their deadline
        self._waiting: dict[str, float] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._timer = threading.Thread(target=self._expiries, name="atoll-expiry", daemon=True)
        self._timer.start()

    def submit(self, env_id: str, job_id: str, expires_at: float) -> None:
        """Queue a job; ``expires_at`` is a ``time.time()`` after which it may not start."""
        with self._cond:
            heapq.heappush(self._deadlines, (expires_at, job_id))
            self._waiting[job_id] = expires_at
            self._cond.notify()
        self._pools[env_id].submit(self._start, job_id)

    def deadlines(self) -> int:
        """Deadlines the heap holds, stale ones included."""
        with self._cond:
            return len(self._deadlines)

    def _start(self, job_id: str) -> None:
        with self._cond:
            self._waiting.pop(job_id, None)
            if len(self._deadlines) > 2 * len(self._waiting) + STALE_SLACK:
                self._deadlines = [(t, j) for t, j in self._deadlines if self._waiting.get(j) == t]
                heapq.heapify(self._deadlines)
        self._run(job_id)

    def offers(self, env_id: str) -> bool:
        return env_id in self._pools

    def _expiries(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (
                    not self._deadlines or self._deadlines[0][0] > time.time()
                ):
                    timeout = self._deadlines[0][0] - time.time() if self._deadlines else None
                    self._cond.wait(timeout)
                if self._closed:
                    return
                expires_at, job_id = heapq.heappop(self._deadlines)
                if self._waiting.get(job_id) != expires_at:
                    continue  # started meanwhile, or queued again with another deadline
                del self._waiting[job_id]
            # the callback expires the job only if the store still has it waiting
            self._expire(job_id)

    def shutdown(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        self._timer.join(timeout=10)
