"""The sweeper: deletes the results and logs of jobs whose storage time has passed, in
whichever result store holds them, and says so in each job's status.

It runs in the process that owns the engine, on a thread that wakes every
``interval`` seconds. Each job is swept in three steps, each safe to repeat: marked expired
in the store (from then on nothing of it is served), its files deleted (idempotent), marked
deleted. A sweep cut short anywhere (a crash, a store out of reach) leaves the job marked
expired and not deleted, and the next sweep finishes it. The job's record, its list of
results (names, sizes, sha256) and its receipt are kept: they are small and prove what
happened.
"""

from __future__ import annotations

import logging
import threading
import time

from atoll.engine.jobstore import JobStore
from atoll.engine.runner import Engine
from atoll.storage import StorageError

log = logging.getLogger("atoll.sweeper")

#: jobs looked at per round; a sweep runs rounds until none is due
BATCH = 100


class ResultSweeper:
    def __init__(self, store: JobStore, engine: Engine, interval: float) -> None:
        self.store = store
        self.engine = engine
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self, now: float | None = None) -> int:
        """Delete what is due at ``now`` (default: the time now); returns the jobs swept.
        A job whose deletion fails is left for the next sweep."""
        now = time.time() if now is None else now
        self.store.give_expiry({e.id: e.storage_expiry for e in self.engine.environments.values()})
        swept = 0
        failed: set[str] = set()
        while True:
            due = self.store.due_to_expire(now, BATCH, skip=failed)
            if not due:
                return swept
            for job_id in due:
                self.store.mark_expiring(job_id)
                try:
                    self.engine.free(job_id)
                except (StorageError, OSError) as exc:
                    failed.add(job_id)
                    log.warning("results of job %s could not be deleted yet: %s", job_id, exc)
                    continue
                self.store.mark_expired(job_id)
                self.engine.notifier.notify(job_id)
                swept += 1

    # -- the thread ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="atoll-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                swept = self.sweep()
                if swept:
                    log.info("sweeper: results of %d jobs expired and were deleted", swept)
            except Exception:
                # the store out of reach, say: the next round tries again
                log.exception("sweeper: unexpected error")
            self._stop.wait(self.interval)
