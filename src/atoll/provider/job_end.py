"""Handling a job's end once, however many ask at the same moment.

When a job ends, its watcher and every client long-polling its status want the end handled
(receipt, derived asset, keeper) before they answer. The handler is idempotent, but each
call costs store round trips under a lock: with hundreds of watchers on a few jobs that
queue is what they would wait in. Here the first caller runs it, the others at that moment
await the same run, and later callers get the remembered outcome without any store access.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from atoll.models.job import JobInfo
from atoll.provider.outcomes import Outcome

#: ended jobs whose outcome is kept in memory (the store has them all)
REMEMBER = 256


class OncePerJob:
    def __init__(
        self, handler: Callable[[JobInfo], Awaitable[Outcome]], remember: int = REMEMBER
    ) -> None:
        self._handler = handler
        self._remember = remember
        self._running: dict[str, asyncio.Future[Outcome]] = {}
        self._done: OrderedDict[str, Outcome] = OrderedDict()

    async def __call__(self, info: JobInfo) -> Outcome:
        done = self._done.get(info.jobId)
        if done is not None:
            return done
        running = self._running.get(info.jobId)
        if running is None:
            running = asyncio.ensure_future(self._run(info))
            self._running[info.jobId] = running
        # shielded: a caller that goes away (a client hanging up) does not cancel the run
        # the others are waiting for
        return await asyncio.shield(running)

    async def _run(self, info: JobInfo) -> Outcome:
        try:
            outcome = await self._handler(info)
        finally:
            self._running.pop(info.jobId, None)
        # only a success is remembered: a failure is tried again by the next caller
        self._done[info.jobId] = outcome
        while len(self._done) > self._remember:
            self._done.popitem(last=False)
        return outcome
