"""Jobs sent to the scheduler together.

Much of what the scheduler spends on a job's task goes to the message that brings it: a
graph it unpacks on a thread of its own, one per message (a third of its time under load,
when every job was sent alone). So one thread at a time sends, and the jobs submitted
meanwhile wait for it and go out together, in one graph. A graph goes out at most every
``GATHER`` seconds, and the jobs of that moment share it: under load, a few a graph; a job
that comes alone, longer than that after the last graph, is sent at once.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from distributed import Client, Future


@dataclass(eq=False)
class _Submission:
    client: Client
    payload: str
    key: str
    resources: dict[str, float]
    sent: threading.Event = field(default_factory=threading.Event)
    future: Future[Any] | None = None
    error: BaseException | None = None


#: the least time between two graphs under load, in seconds
GATHER = 0.004


class Submits:
    """Sends ``fn(payload)`` tasks, each under its own key and resources; the thread that
    finds no submission under way sends what queued, and again while more queued meanwhile."""

    def __init__(self, fn: Callable[[str], Any], gather: float = GATHER) -> None:
        self._fn = fn
        self._gather = gather
        self._lock = threading.Lock()
        self._queue: list[_Submission] = []
        self._sending = False
        #: when the last graph went out (time.monotonic)
        self._last = -math.inf
        #: graphs sent, and the jobs they held
        self.graphs = 0
        self.jobs = 0

    @property
    def waiting(self) -> int:
        """Submissions queued behind the one being sent."""
        with self._lock:
            return len(self._queue)

    def submit(
        self, client: Client, payload: str, key: str, resources: dict[str, float]
    ) -> Future[Any]:
        mine = _Submission(client, payload, key, resources)
        with self._lock:
            self._queue.append(mine)
            lead = not self._sending
            self._sending = True
        if lead:
            # under load (a graph went out a moment ago) the jobs that come meanwhile
            # join this one's graph; a job that comes alone waits for nothing
            wait = self._last + self._gather - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._drain()
        mine.sent.wait()
        if mine.error is not None:
            raise mine.error
        assert mine.future is not None
        return mine.future

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._sending = False
                    return
            self._last = time.monotonic()
            for group in _groups(batch):
                self._send(group)

    def _send(self, group: list[_Submission]) -> None:
        first = group[0]
        self.graphs += 1
        self.jobs += len(group)
        try:
            futures = first.client.map(
                self._fn,
                [s.payload for s in group],
                key=[s.key for s in group],
                resources=first.resources,
                pure=False,
            )
        except BaseException as e:  # each waiting submitter raises it as its own
            for s in group:
                s.error = e
        else:
            for s, f in zip(group, futures, strict=True):
                s.future = f
        for s in group:
            s.sent.set()


def _groups(batch: list[_Submission]) -> list[list[_Submission]]:
    """The batch in graphs of one client and the same resources (a graph's tasks share
    theirs), in the order they came."""
    groups: dict[tuple[int, tuple[tuple[str, float], ...]], list[_Submission]] = {}
    for s in batch:
        groups.setdefault((id(s.client), tuple(sorted(s.resources.items()))), []).append(s)
    return list(groups.values())
