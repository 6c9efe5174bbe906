"""The disclosure checks of jobs, run in a process of their own.

A job's checks are mostly work for the interpreter: in the server's own process they hold its
lock while the job's end (its sandbox released, its status, its receipt) is being made, and
the two take turns. In a process of their own they run beside it, on another core; the inputs
each job reads are parsed and kept there, once (:func:`atoll.disclosure.prepare`).

The process starts with the first job that needs it, and ends with the server however the
server ends. If it dies (a file that exhausts its memory, a kill), a new one starts and the
check is sent again; if that one dies under it too, the check holds every file it was given.
Only where no process can be started at all do the checks run in the server's. Nothing is
ever released unchecked.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import select
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TypeVar

from atoll.disclosure import Candidate, CheckReport, check_files, prepare, unchecked
from atoll.disclosure.inputs import kept
from atoll.models.output_policy import OutputChecks

log = logging.getLogger(__name__)

T = TypeVar("T")

#: processes a call is sent to before its files are held
ATTEMPTS = 2
#: what a file is held for when the checks' process died checking it
STOPPED = "the checks stopped before they ended"


class Checker:
    """:func:`~atoll.disclosure.check_files` and :func:`~atoll.disclosure.prepare`, run in the
    checks' process."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def check(
        self, candidates: Sequence[Candidate], inputs: Sequence[Path], checks: OutputChecks
    ) -> CheckReport:
        """Check the files a job wrote against the inputs it read (blocking)."""
        try:
            return self._run(check_files, list(candidates), list(inputs), checks)
        except BrokenProcessPool:
            return unchecked(candidates, STOPPED)

    def begin(
        self, candidates: Sequence[Candidate], inputs: Sequence[Path], checks: OutputChecks
    ) -> Future[CheckReport] | None:
        """:meth:`check` sent to the checks' process without waiting for it: its report to
        come (or the error that stopped it, such as the process's death, which
        :meth:`check` would have survived); None where no process is there to send it to."""
        pool = self._current()
        if pool is None:
            return None
        try:
            return pool.submit(check_files, list(candidates), list(inputs), checks)
        except (BrokenProcessPool, RuntimeError):
            self._drop(pool)
            return None

    def prepare(self, inputs: Sequence[Path], checks: OutputChecks) -> int:
        """Parse and keep the inputs in the checks' process (blocking); how many it parsed."""
        try:
            return self._run(prepare, list(inputs), checks)
        except BrokenProcessPool:
            return 0

    def kept(self, path: Path) -> bool:
        """Whether this version of ``path`` is kept parsed where the checks run."""
        try:
            return self._run(kept, path)
        except BrokenProcessPool:
            return False

    def running(self) -> int | None:
        """The checks' process id, while one runs."""
        with self._lock:
            pool = self._pool
        processes = getattr(pool, "_processes", None) or {}
        return next(iter(processes), None)

    def close(self) -> None:
        """End the checks' process; a check asked for after this runs in the caller's."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, call: Callable[..., T], *args: object) -> T:
        # a process that died between two checks is replaced before the call is sent; one
        # that died under it (killed, out of memory) is replaced and the call sent again,
        # once: a second death raises BrokenProcessPool. Never made here, where what killed
        # it would take the server down
        deaths = 0
        for _ in range(2 * ATTEMPTS + 1):
            pool = self._current()
            if pool is None:
                return call(*args)
            try:
                future = pool.submit(call, *args)
            except (BrokenProcessPool, RuntimeError):
                # broken or shut down since it was last used: by close (then here), or as
                # its process died (then another)
                self._drop(pool)
                continue
            try:
                return future.result()
            except BrokenProcessPool:
                log.warning("the checks' process ended under a check; a new one starts")
                self._drop(pool)
                deaths += 1
                if deaths >= ATTEMPTS:
                    break
        raise BrokenProcessPool("the checks' process ended under the call each time")

    def _drop(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def _current(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._closed:
                return None
            if self._pool is None:
                try:
                    # spawned, not forked: the server's threads hold locks a fork would copy
                    context = multiprocessing.get_context("spawn")
                    self._pool = ProcessPoolExecutor(
                        1, mp_context=context, initializer=_end_with, initargs=(os.getpid(),)
                    )
                except OSError as exc:
                    log.warning("no process for the checks (%s): they run here", exc.strerror)
                    return None
            return self._pool


def _end_with(parent: int) -> None:
    """In the checks' process: end it the moment the server that started it ends, however
    it ends (one killed outright leaves no one to end it)."""
    try:
        fd = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(0)

    def watch() -> None:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll()
        os._exit(0)

    threading.Thread(target=watch, name="atoll-checks-parent", daemon=True).start()
