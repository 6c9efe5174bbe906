"""Per-environment queues: each environment runs at most ``max_jobs`` jobs at once, the rest
wait in its queue in order, and a job that waits longer than the environment's
``queue_max_wait`` expires. No polling: a job starts when a slot frees (a pool's own queue),
and expiries are kept in one heap that a single thread sleeps on until the earliest is due.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from atoll.models.environment import Environment


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
        self._cond = threading.Condition()
        self._closed = False
        self._timer = threading.Thread(target=self._expiries, name="atoll-expiry", daemon=True)
        self._timer.start()

    def submit(self, env_id: str, job_id: str, expires_at: float) -> None:
        """Queue a job; ``expires_at`` is a ``time.time()`` after which it may not start."""
        with self._cond:
            heapq.heappush(self._deadlines, (expires_at, job_id))
            self._cond.notify()
        self._pools[env_id].submit(self._run, job_id)

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
                _, job_id = heapq.heappop(self._deadlines)
            # the callback expires the job only if it is still waiting; a started job is
            # left alone, so stale heap entries need no removal
            self._expire(job_id)

    def shutdown(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        self._timer.join(timeout=10)
