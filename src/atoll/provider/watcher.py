"""Follows each started job to its end and hands the ended job on (receipt, derived asset,
keeper). Waiting is the registry's long-poll, so an end is seen the moment it happens; after
a restart, :meth:`JobWatcher.resume` picks up the jobs nobody was following."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from atoll.errors import AtollError, NotFound
from atoll.models.job import JobInfo
from atoll.operator.registry import WorkflowRegistry

log = logging.getLogger("atoll.watcher")


class JobWatcher:
    def __init__(
        self, registry: WorkflowRegistry, on_end: Callable[[JobInfo], Awaitable[object]]
    ) -> None:
        self.registry = registry
        self.on_end = on_end
        self._tasks: set[asyncio.Task[None]] = set()

    def track(self, job_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._follow(job_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, job_id: str) -> None:
        while True:
            try:
                info = await self.registry.wait(job_id, 60)
            except AtollError as exc:
                log.warning("job %s cannot be followed: %s", job_id, exc.message)
                return
            if info.terminal:
                await self._ended(info)
                return

    async def _ended(self, info: JobInfo) -> None:
        try:
            await self.on_end(info)
        except Exception:
            log.exception("job %s: handling its end failed", info.jobId)

    async def resume(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            try:
                info = await self.registry.status(job_id)
            except NotFound:
                continue
            if info.terminal:
                await self._ended(info)
            else:
                self.track(job_id)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
