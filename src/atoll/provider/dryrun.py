"""Dry runs: a consumer's algorithm run on a dataset's mock data, with no agreement and no
payment, to see every output, every log and the check report a real job would get.

A dry run is started the way a real job is (:meth:`ProviderService.build_workflow`: the same
algorithm policy, parameters and environment limits, the same sandbox) with the mock file as
the dataset's only input: the real file is neither read nor mounted. Its job belongs to no
consumer address in the operator's store (:data:`DRY_RUN_OWNER`), so the compute routes, the
watcher and the keeper never see it: nothing is counted, settled or receipted. Who may read
it is kept here. It has no network: free compute must not be a free proxy.

Free compute is a resource to protect: each address has a rate limit, and at most so many dry
runs run at once (in all, and one per address).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import Engine, insert, select, update

from atoll.db.schema import dry_runs
from atoll.disclosure import Candidate
from atoll.errors import NotFound
from atoll.models.ddo import DDO
from atoll.models.job import JobInfo, ResultFile, WorkflowInput
from atoll.models.mock import DryRunStatus
from atoll.operator.registry import all_results
from atoll.provider.checker import Checker
from atoll.provider.compute import ComputeService, JobRequest
from atoll.provider.mock import MockData, checks_of
from atoll.provider.ratelimit import RateLimits
from atoll.provider.review import kind_of
from atoll.web.errors import TooManyRequests

#: the operator's owner of every dry run: not an address, so no signed request names it
DRY_RUN_OWNER = "dry-run"
#: how long a consumer is told to wait when too many dry runs are running
BUSY_RETRY_SECONDS = 30


class DryRuns:
    """Starts dry runs, and shows each to the consumer who started it."""

    def __init__(
        self,
        db: Engine,
        service: ComputeService,
        mocks: MockData,
        rate: str = "3/minute;30/hour",
        concurrent: int = 2,
        checker: Checker | None = None,
    ) -> None:
        self.db = db
        #: where the checks run: the node's checks' process (or here, without one)
        self.checker = checker or Checker()
        self.service = service
        self.mocks = mocks
        self.rate = RateLimits("", rate)
        self.concurrent = concurrent
        #: dry runs that may still be running → their consumer
        self._active: dict[str, str] = {}
        self._lock = anyio.Lock()

    async def start(self, consumer: str, req: JobRequest) -> JobInfo:
        self.rate.check_address("dryrun", consumer)

        async def mock_input(ddo: DDO) -> WorkflowInput:
            file = await anyio.to_thread.run_sync(self.mocks.input_file, ddo.id)
            return WorkflowInput(
                did=ddo.id, ddo=ddo.public_json(), locations=[file.location], files=[file]
            )

        workflow = await self.service.build_workflow(
            consumer, req, authorize=False, inputs_for=mock_input
        )
        job_id = uuid.uuid4().hex
        workflow = workflow.model_copy(
            update={
                "jobId": job_id,
                "owner": DRY_RUN_OWNER,
                "agreementId": "",
                "agreements": [],
                "publishOutput": None,
                "egress": [],
            }
        )
        async with self._lock:
            await self._make_room(consumer)
            await anyio.to_thread.run_sync(self._record, job_id, consumer, req.datasets[0].did)
            info = await self.service.registry.register(workflow)
            self._active[job_id] = consumer
        return self._shown(info, consumer)

    async def _make_room(self, consumer: str) -> None:
        for job_id in list(self._active):
            try:
                ended = (await self.service.registry.status(job_id)).terminal
            except NotFound:
                ended = True
            if ended:
                del self._active[job_id]
        if consumer in self._active.values():
            raise TooManyRequests(
                f"a dry run of {consumer} is still running: one at a time", BUSY_RETRY_SECONDS
            )
        if len(self._active) >= self.concurrent:
            raise TooManyRequests(
                f"{len(self._active)} dry runs are running, the most this provider runs at "
                f"once; retry in {BUSY_RETRY_SECONDS} s",
                BUSY_RETRY_SECONDS,
            )

    def _record(self, job_id: str, consumer: str, did: str) -> None:
        with self.db.begin() as conn:
            conn.execute(
                insert(dry_runs).values(
                    job_id=job_id, consumer=consumer.lower(), did=did, created=time.time()
                )
            )

    def _row(self, consumer: str, job_id: str) -> Any:
        with self.db.connect() as conn:
            row = conn.execute(select(dry_runs).where(dry_runs.c.job_id == job_id)).first()
        # another consumer's dry run is reported as unknown, so ids cannot be probed
        if row is None or row.consumer != consumer.lower():
            raise NotFound(f"no dry run {job_id} for this consumer")
        return row

    async def status(self, consumer: str, job_id: str, wait: float = 0) -> DryRunStatus:
        row = await anyio.to_thread.run_sync(self._row, consumer, job_id)
        registry = self.service.registry
        info = await (registry.wait(job_id, wait) if wait > 0 else registry.status(job_id))
        report = row.report
        if report is None and info.terminal and not info.removed:
            report = await self._check(info, row.did)
        held = [f["index"] for f in (report or {}).get("files", []) if f["verdict"] == "hold"]
        return DryRunStatus(job=self._shown(info, consumer), report=report, held=held)

    async def _check(self, info: JobInfo, did: str) -> dict[str, Any]:
        """The checks a real job's outputs would go through, with the dataset's settings and
        the mock file as the input they are compared with; kept once made."""
        ddo = await anyio.to_thread.run_sync(self.service.assets.get, did)
        mock = await anyio.to_thread.run_sync(self.mocks.path, did)
        results = await all_results(self.service.registry, info)
        with tempfile.TemporaryDirectory(prefix="atoll-dryrun-") as tmp:
            candidates = []
            for r in results:
                path = Path(tmp) / str(r.index)
                await self._save(info.jobId, r, path)
                candidates.append(Candidate(r.index, kind_of(r), r.filename, path))
            report = await anyio.to_thread.run_sync(
                self.checker.check, candidates, [mock], checks_of(ddo)
            )
        data = report.model_dump(mode="json")
        data["digest"] = report.digest()

        def keep() -> None:
            with self.db.begin() as conn:
                conn.execute(
                    update(dry_runs).where(dry_runs.c.job_id == info.jobId).values(report=data)
                )

        await anyio.to_thread.run_sync(keep)
        return data

    async def _save(self, job_id: str, entry: ResultFile, path: Path) -> None:
        _, stream = await self.service.registry.result(job_id, entry.index)
        async with await anyio.open_file(path, "wb") as f:
            async for chunk in stream:
                await f.write(chunk)

    async def result(
        self, consumer: str, job_id: str, index: int
    ) -> tuple[ResultFile, AsyncIterator[bytes]]:
        """Any output or log of the dry run: it ran on mock data only."""
        await anyio.to_thread.run_sync(self._row, consumer, job_id)
        return await self.service.registry.result(job_id, index)

    async def delete(self, consumer: str, job_id: str) -> JobInfo:
        """Remove an ended dry run's outputs and logs."""
        await anyio.to_thread.run_sync(self._row, consumer, job_id)
        return self._shown(await self.service.registry.delete(job_id), consumer)

    @staticmethod
    def _shown(info: JobInfo, consumer: str) -> JobInfo:
        return info.model_copy(update={"owner": consumer})
