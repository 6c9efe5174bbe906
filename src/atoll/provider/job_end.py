"""Handling a job's end once, however many ask at the same moment.

When a job ends, its watcher and every client long-polling its status want the end handled
(receipt, derived asset, keeper) before they answer. The handler is idempotent, but each
call costs store round trips under a lock: with hundreds of watchers on a few jobs that
queue is what they would wait in. Here the first caller runs it, the others at that moment
await the same run, and later callers get the remembered outcome without any store access.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from atoll.lru import SizedLRU
from atoll.models.job import JobInfo
from atoll.provider.outcomes import Outcome

#: bytes of ended jobs' outcomes kept in memory, the most recent (the store has them all)
REMEMBER_BYTES = 1 << 20


class OncePerJob:
    def __init__(
        self, handler: Callable[[JobInfo], Awaitable[Outcome]], remember: int = REMEMBER_BYTES
    ) -> None:
        self._handler = handler
        self._running: dict[str, asyncio.Future[Outcome]] = {}
        self._done: SizedLRU[str, Outcome] = SizedLRU(remember)

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
        self._done.put(info.jobId, outcome)
        return outcome

    def remembered_bytes(self) -> int:
        """Bytes of outcomes kept in memory (as :func:`atoll.lru.deep_size` weighs them)."""
        return self._done.size
