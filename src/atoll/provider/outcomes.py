"""What a job leaves behind once it ends: the disclosure checks' verdict on its files, a
signed execution receipt that binds it, and, when the consumer asked for it, a derived asset
made of its outputs.

This is the one path a job's end takes (checks → receipt → derived asset, then the keeper,
:mod:`atoll.node`), driven by the watcher that follows each job; every route that needs an
ended job goes through it first (:class:`atoll.provider.job_end.OncePerJob`). Each step is a
row in the store, made once, so a crash anywhere is finished by the next run.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from atoll import faults
from atoll.catalog.publish import build_ddo, inspect_files
from atoll.catalog.store import AssetStore
from atoll.chain.deployment import ChainNode
from atoll.db.schema import job_outcomes
from atoll.errors import AtollError, Conflict, NotFound
from atoll.images.trust import container_section_checksum
from atoll.models.ddo import Metadata, Provenance
from atoll.models.environment import Environment
from atoll.models.job import JobInfo, ResultFile
from atoll.models.receipt import (
    Receipt,
    ReceiptAlgorithm,
    ReceiptChecks,
    ReceiptContainer,
    ReceiptEnvironment,
    ReceiptInput,
    ReceiptPolicy,
    ReceiptResult,
    SignedReceipt,
)
from atoll.models.status import JobStatus
from atoll.operator.registry import WorkflowRegistry, all_results, save_result
from atoll.provider.policy import inherited_policy
from atoll.provider.registrar import DidRegistrar
from atoll.provider.review import OutputReview
from atoll.signing import Key

log = logging.getLogger("atoll.outcomes")


@dataclass(frozen=True)
class Outcome:
    receipt: SignedReceipt
    derived_did: str


class JobOutcomes:
    def __init__(
        self,
        db: Engine,
        assets: AssetStore,
        key: Key,
        chain: ChainNode,
        environments: dict[str, Environment],
        derived_dir: Path,
        endpoint: str,
        default_timeout: int,
        review: OutputReview,
    ) -> None:
        self.db = db
        self.review = review
        self.assets = assets
        self.key = key
        self.chain = chain
        self.environments = environments
        self.derived_dir = derived_dir
        self.endpoint = endpoint
        self.default_timeout = default_timeout
        # one job's end is made once: the watcher and a consumer asking for the receipt may
        # come at the same moment. Jobs ending together do not wait for each other...
        self._job_locks: dict[str, anyio.Lock] = {}
        # ...except to publish a derived asset, which sends the provider's transactions
        self._publish_lock = anyio.Lock()

    def get(self, job_id: str) -> Outcome | None:
        with self.db.connect() as conn:
            row = conn.execute(select(job_outcomes).where(job_outcomes.c.job_id == job_id)).first()
        if row is None:
            return None
        return Outcome(SignedReceipt.model_validate(row.receipt), row.derived_did)

    def receipt(
        self, info: JobInfo, results: list[ResultFile], checks: ReceiptChecks | None = None
    ) -> Receipt:
        env = self.environments.get(info.environment)
        runtime = env.runtime_checksum() if env is not None else ""
        agreements = info.agreements or [info.agreementId]
        inputs = []
        for i, did in enumerate(info.inputDID):
            try:
                checksum = self.assets.get(did).filesChecksum
            except NotFound:
                checksum = ""
            aid = agreements[i] if i < len(agreements) else ""
            inputs.append(ReceiptInput(did=did, checksum=checksum, agreementId=aid))
        r = info.resources
        return Receipt(
            provider=self.key.address,
            chainId=self.chain.chain.chain_id,
            jobId=info.jobId,
            consumer=info.owner,
            inputs=inputs,
            algorithm=ReceiptAlgorithm(
                did=info.algoDID,
                checksum=info.algorithmChecksum,
                container=_receipt_container(info),
            ),
            environment=ReceiptEnvironment(
                id=info.environment,
                runtimeChecksum=runtime,
                cpu=r.cpu or 0,
                memoryMb=r.memoryMb or 0,
                diskMb=r.diskMb or 0,
                maxDuration=r.maxDuration or 0,
            ),
            policy=ReceiptPolicy(network=info.network, trust=info.trust),
            started=info.dateStarted,
            finished=info.dateFinished,
            status=info.status,
            statusText=info.statusText,
            results=[_receipt_result(x, checks) for x in results],
            checks=checks,
        )

    async def finish(
        self,
        info: JobInfo,
        registry: WorkflowRegistry,
        then: Callable[[Outcome], None] | None = None,
    ) -> Outcome:
        """The job's outcome, made now if nobody made it yet. Only for ended jobs. ``then``
        (blocking, idempotent) is called with it before it is returned, in the worker thread
        that made or read it where it can be."""
        if not info.terminal:
            raise Conflict("the job has not ended; its receipt comes when it does")
        lock = self._job_locks.setdefault(info.jobId, anyio.Lock())
        try:
            async with lock:
                return await self._finish(info, registry, then)
        finally:
            # the next caller, if any, already holds or awaits this lock; the last one out
            # forgets it, and a later caller finds the stored outcome under a new one
            idle = not lock.locked() and lock.statistics().tasks_waiting == 0
            if idle and self._job_locks.get(info.jobId) is lock:
                del self._job_locks[info.jobId]

    async def _finish(
        self, info: JobInfo, registry: WorkflowRegistry, then: Callable[[Outcome], None] | None
    ) -> Outcome:
        derives = info.publishOutput is not None and info.status == JobStatus.FINISHED
        if not derives and info.all_results_listed and self.review.checks_here():
            # the usual end, in one trip to a worker thread: each trip waits for a free
            # thread and then for the event loop, which is what the job's waiters wait in
            return await anyio.to_thread.run_sync(self._settle, info, then)
        outcome = await anyio.to_thread.run_sync(self.get, info.jobId)
        if outcome is None:
            results = await all_results(registry, info)
            checks = await self.review.check_ended(info, results)
            faults.point("end.checked")
            signed = await anyio.to_thread.run_sync(self._sign, info, results, checks)
            derived = ""
            if derives and checks is not None and _held_outputs(results, checks):
                # outputs a reviewer has not seen never become an asset
                log.warning("job %s: no derived asset: outputs are held for review", info.jobId)
            elif derives:
                try:
                    async with self._publish_lock:
                        derived = await self._publish_derived(info, signed, registry, results)
                except AtollError as exc:
                    log.warning("job %s: no derived asset: %s", info.jobId, exc.message)
                faults.point("end.derived")
            outcome = await anyio.to_thread.run_sync(self._keep, info.jobId, signed, derived)
        if then is not None:
            await anyio.to_thread.run_sync(then, outcome)
        return outcome

    def _settle(self, info: JobInfo, then: Callable[[Outcome], None] | None) -> Outcome:
        outcome = self.get(info.jobId)
        if outcome is None:
            results = list(info.results)
            checks = self.review.check(info, results, None)
            faults.point("end.checked")
            outcome = self._keep(info.jobId, self._sign(info, results, checks), "")
        if then is not None:
            then(outcome)
        return outcome

    def _sign(
        self, info: JobInfo, results: list[ResultFile], checks: ReceiptChecks | None
    ) -> SignedReceipt:
        return SignedReceipt.sign(self.receipt(info, results, checks), self.key)

    def _keep(self, job_id: str, signed: SignedReceipt, derived: str) -> Outcome:
        """Stores the outcome and returns what the store holds (another process sharing the
        store may have made it first)."""
        self._store(job_id, signed, derived)
        outcome = self.get(job_id)
        assert outcome is not None
        return outcome

    def _store(self, job_id: str, signed: SignedReceipt, derived: str) -> None:
        try:
            with self.db.begin() as conn:
                conn.execute(
                    insert(job_outcomes).values(
                        job_id=job_id, receipt=signed.model_dump(mode="json"), derived_did=derived
                    )
                )
        except IntegrityError:
            pass  # made by another process sharing the store

    async def _publish_derived(
        self,
        info: JobInfo,
        signed: SignedReceipt,
        registry: WorkflowRegistry,
        results: list[ResultFile],
    ) -> str:
        """Outputs → a new asset owned by the consumer: files kept by the provider, a
        compute service (raw code refused until the owner says otherwise), no access
        service, registered on chain and handed to the consumer there."""
        assert info.publishOutput is not None
        outputs = [r for r in results if r.type == "output"]
        if not outputs:
            raise AtollError("the job wrote no output")
        target = self.derived_dir / info.jobId
        target.mkdir(parents=True, exist_ok=True)
        locations = []
        for entry in outputs:
            path = target / str(entry.index)
            await save_result(registry, info.jobId, entry.index, path)
            locations.append(str(path))
        return await anyio.to_thread.run_sync(
            self._register_derived, info, signed, target, locations, outputs
        )

    def _register_derived(
        self,
        info: JobInfo,
        signed: SignedReceipt,
        target: Path,
        locations: list[str],
        outputs: list[ResultFile],
    ) -> str:
        assert info.publishOutput is not None
        files = inspect_files(locations)
        for f, entry in zip(files, outputs, strict=True):
            if f.sha256 != entry.sha256:
                shutil.rmtree(target, ignore_errors=True)
                raise AtollError(f"output {entry.index} changed before it could be published")
        # what every input allows, and no more: the outputs carry their inputs' data
        policy = inherited_policy(self.assets, info.inputDID)
        meta = Metadata(
            name=info.publishOutput.name,
            description=info.publishOutput.description,
            type="dataset",
            tags=["derived"],
            provenance=Provenance(
                jobId=info.jobId,
                inputs=info.inputDID,
                algorithm=info.algoDID or f"sha256:{info.algorithmChecksum}",
                receipt=signed.model_dump(mode="json"),
                inheritedPolicy=policy,
            ),
        )
        ddo = build_ddo(info.owner, meta, files, self.endpoint, policy, self.default_timeout)
        if self.assets.exists(ddo.id):
            # made by this job before a crash cut its end short (the DID is derived from
            # the job's receipt and outputs): the same asset, not a failure to publish
            return ddo.id
        # on chain and the consumer's before it is public, as every asset
        DidRegistrar(self.chain).claim(ddo)
        self.assets.add(ddo, files)
        return ddo.id


def _receipt_result(entry: ResultFile, checks: ReceiptChecks | None) -> ReceiptResult:
    """A result as the receipt names it: a held one by index, size, type and sha256 only (the
    consumer reads the receipt; the name is the job's choice)."""
    held = checks is not None and entry.index not in checks.released
    return ReceiptResult(
        index=entry.index,
        filename="" if held else entry.filename,
        filesize=entry.filesize,
        type=entry.type,
        sha256=entry.sha256,
    )


def _held_outputs(results: list[ResultFile], checks: ReceiptChecks) -> bool:
    return any(r.type == "output" and r.index not in checks.released for r in results)


def _receipt_container(info: JobInfo) -> ReceiptContainer | None:
    """The image the job ran in, by digest, and its entrypoint, bound by the receipt."""
    run = info.container
    if run is None:
        return None
    digest = run.image.rpartition("@")[2]
    return ReceiptContainer(
        image=run.image,
        entrypoint=run.entrypoint,
        containerSectionChecksum=container_section_checksum(run.entrypoint, digest),
    )
