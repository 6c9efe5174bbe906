"""The Operator-Service: the workflow registry the provider talks to.

``WorkflowRegistry`` is the interface; :class:`LocalRegistry` runs it in the provider's
process over the store and the engine, and :class:`atoll.operator.client.OperatorClient`
reaches a standalone operator (``atoll operator serve``) over signed HTTP. The provider has
already authorised every call: the registry checks existence and state, not ownership.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import anyio

from atoll.engine.jobstore import JobStore
from atoll.engine.notify import Notifier, SharedLook
from atoll.engine.runner import Engine
from atoll.errors import BadRequest, Conflict, Gone, NotFound
from atoll.models.job import RESULTS_PAGE, JobInfo, ResultFile, ResultsPage, Workflow
from atoll.storage import ObjectNotFound

CHUNK = 1 << 16
MAX_WAIT = 60.0


class WorkflowRegistry(Protocol):
    async def register(self, workflow: Workflow) -> JobInfo: ...

    async def admit(self, workflow: Workflow) -> None:
        """Whether the node has room for the job now (a quote asks before the consumer
        pays); Unavailable when it has not. :meth:`register` checks again."""
        ...

    async def status(self, job_id: str) -> JobInfo: ...

    async def list(self, owner: str) -> list[JobInfo]: ...

    async def stop(self, job_id: str) -> JobInfo: ...

    async def delete(self, job_id: str) -> JobInfo: ...

    async def wait(self, job_id: str, timeout: float, since: int | None = None) -> JobInfo:
        """Return once the job has ended, or its status differs from ``since`` when given,
        or ``timeout`` seconds have passed."""
        ...

    def logs(self, job_id: str, follow: bool = False) -> AsyncIterator[bytes]:
        """The job's stdout and stderr; with ``follow``, new output as it comes until the job
        ends."""
        ...

    async def result(self, job_id: str, index: int) -> tuple[ResultFile, AsyncIterator[bytes]]: ...

    async def results(self, job_id: str, offset: int = 0, limit: int = RESULTS_PAGE) -> ResultsPage:
        """A page of the job's results (``limit`` at most RESULTS_PAGE)."""
        ...


def gone_if_expired(info: JobInfo) -> None:
    """Results past their storage time are answered as gone (410), never as missing."""
    if info.resultsExpired:
        raise Gone(
            f"the results and logs of job {info.jobId} expired at {info.dateExpires} "
            "and were deleted; its receipt is kept"
        )


def check_index(info: JobInfo, index: int, entry: ResultFile | None) -> ResultFile:
    if info.removed:
        raise NotFound("the job's results were removed")
    gone_if_expired(info)
    if entry is not None:
        return entry
    if not info.terminal:
        raise Conflict("the job has not finished; results come when it ends")
    raise NotFound(f"result index {index} is out of range (the job has {info.resultCount})")


async def all_results(registry: WorkflowRegistry, info: JobInfo) -> list[ResultFile]:
    """Every result of the job, page by page (bounded: a job has at most the engine's cap on
    files, plus its logs)."""
    if info.all_results_listed:
        return list(info.results)
    found: list[ResultFile] = []
    while len(found) < info.resultCount:
        page = await registry.results(info.jobId, len(found), RESULTS_PAGE)
        if not page.results:
            break
        found += page.results
    return found


def is_local(registry: WorkflowRegistry) -> bool:
    """Whether the registry runs in this process, its result files on this host."""
    return isinstance(registry, LocalRegistry) and registry.engine.results_local


def local_result(registry: WorkflowRegistry, job_id: str, index: int) -> Path | None:
    """Where a result file lies on this host, when the registry runs here; None when it must
    be fetched through :meth:`WorkflowRegistry.result`."""
    if isinstance(registry, LocalRegistry):
        return registry.engine.local_result(job_id, index)
    return None


async def save_result(registry: WorkflowRegistry, job_id: str, index: int, target: Path) -> None:
    """Put a result file at ``target``: linked when it lies on this host (the bytes are
    written once), fetched otherwise."""
    local = local_result(registry, job_id, index)
    if local is not None:
        try:
            target.unlink(missing_ok=True)
            os.link(local, target)
            return
        except OSError:
            pass  # another file system: copied below
    _entry, stream = await registry.result(job_id, index)
    with target.open("wb") as fh:
        async for chunk in stream:
            fh.write(chunk)


class LocalRegistry:
    def __init__(self, store: JobStore, engine: Engine, notifier: Notifier) -> None:
        self.store = store
        self.engine = engine
        self.notifier = notifier
        # the waiters a change wakes share one status read
        self._look = SharedLook(notifier, self.status)

    async def register(self, workflow: Workflow) -> JobInfo:
        job_id = workflow.jobId or uuid.uuid4().hex
        # no await between the check and the record: two starts cannot both take the
        # last of the node's space
        self.engine.admit(workflow)
        info = self.store.create(job_id, workflow)
        self.engine.submit(job_id)
        return info

    async def admit(self, workflow: Workflow) -> None:
        await anyio.to_thread.run_sync(self.engine.admit, workflow)

    async def status(self, job_id: str) -> JobInfo:
        return await anyio.to_thread.run_sync(self.store.info, job_id)

    async def page(self, owner: str, offset: int, limit: int) -> tuple[int, list[JobInfo]]:
        """A page of the owner's jobs, newest first, and how many there are."""
        return await anyio.to_thread.run_sync(self.store.page_for_owner, owner, offset, limit)

    async def list(self, owner: str) -> list[JobInfo]:
        return await anyio.to_thread.run_sync(self.store.for_owner, owner)

    async def results(self, job_id: str, offset: int = 0, limit: int = RESULTS_PAGE) -> ResultsPage:
        if offset < 0 or not 0 < limit <= RESULTS_PAGE:
            raise BadRequest(f"offset must be 0 or more and limit 1 to {RESULTS_PAGE}")
        info = await self.status(job_id)
        if info.removed:
            raise NotFound("the job's results were removed")
        page = await anyio.to_thread.run_sync(self.store.results, job_id, offset, limit)
        return ResultsPage(
            jobId=job_id,
            resultCount=info.resultCount,
            resultsSha256=info.resultsSha256,
            offset=offset,
            results=page,
        )

    async def stop(self, job_id: str) -> JobInfo:
        info = await self.status(job_id)
        if info.terminal:
            raise Conflict(f"the job has already ended ({info.statusText})")
        # cancelling waits for nothing but a kill; run it off the event loop all the same
        await anyio.to_thread.run_sync(self.engine.stop, job_id)
        return await self.status(job_id)

    async def delete(self, job_id: str) -> JobInfo:
        await anyio.to_thread.run_sync(self.engine.delete, job_id)
        return await self.status(job_id)

    async def wait(self, job_id: str, timeout: float, since: int | None = None) -> JobInfo:
        deadline = time.monotonic() + min(max(timeout, 0.0), MAX_WAIT)
        while True:
            listener, shared = await self._look.look(job_id)
            if shared.terminal or (since is not None and shared.status != since):
                listener.close()
                return shared.model_copy()  # the caller's own: it may add to it
            if not await listener.wait(deadline - time.monotonic()):
                return await self.status(job_id)

    async def logs(self, job_id: str, follow: bool = False) -> AsyncIterator[bytes]:
        # store reads off the event loop: a read may wait on SQLite's writer or the pool
        info = await self.status(job_id)
        if info.removed:
            raise NotFound("the job's logs were removed")
        gone_if_expired(info)
        path = self._log_path(job_id)
        offset = 0
        while True:
            listener = self.notifier.listen(job_id) if follow else None
            try:
                with path.open("rb") as fh:
                    fh.seek(offset)
                    while chunk := fh.read(CHUNK):
                        offset += len(chunk)
                        yield chunk
            except FileNotFoundError:
                pass
            if listener is None:
                return
            if (await self.status(job_id)).terminal:
                listener.close()
                # the last lines may have landed between the read and the status check
                try:
                    with path.open("rb") as fh:
                        fh.seek(offset)
                        while chunk := fh.read(CHUNK):
                            yield chunk
                except FileNotFoundError:
                    pass
                return
            await listener.wait(MAX_WAIT)

    # the only place that knows where the engine writes a running job's log
    def _log_path(self, job_id: str) -> Path:
        return self.engine.workspace(job_id).algorithm_log

    async def result(self, job_id: str, index: int) -> tuple[ResultFile, AsyncIterator[bytes]]:
        if index < 0:
            raise BadRequest("the result index must be 0 or more")
        info = await self.status(job_id)
        found = await anyio.to_thread.run_sync(self.store.result, job_id, index)
        entry = check_index(info, index, found)
        try:
            fh = self.engine.open_result(job_id, index)
        except ObjectNotFound:
            raise NotFound("the result file is missing") from None

        async def stream() -> AsyncIterator[bytes]:
            with fh:
                while chunk := await asyncio.to_thread(fh.read, CHUNK):
                    yield chunk

        return entry, stream()
