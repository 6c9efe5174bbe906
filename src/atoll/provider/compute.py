"""Compute: the provider's decisions about jobs, free of HTTP (the routes parse, this decides).

Start of a job: signature and nonce → every dataset exists and offers compute → the
authoriser (on-chain agreement) says yes for each → the compute policy accepts the
algorithm → parameters validate → a workflow with the private file locations is registered
with the operator. Nothing is registered unless every check passes.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import anyio
from pydantic import BaseModel, Field

from atoll import faults
from atoll.catalog.check import confirm_files
from atoll.catalog.roots import DataRoots
from atoll.catalog.store import AssetStore
from atoll.errors import BadRequest, Forbidden, NotFound, PolicyRefused
from atoll.models.charges import served
from atoll.models.ddo import DDO, AlgorithmContainer, PrivateFile
from atoll.models.environment import Environment, Resources
from atoll.models.job import (
    JobInfo,
    PublishOutput,
    ResultFile,
    ResultsPage,
    Workflow,
    WorkflowAlgorithm,
    WorkflowInput,
)
from atoll.models.parameters import validate_parameters
from atoll.models.status import JobStatus
from atoll.operator.registry import WorkflowRegistry
from atoll.provider.containers import ImageRules, algorithm_container, section_checksum
from atoll.provider.hosts import HostRules
from atoll.provider.policy import (
    check_algorithm,
    egress_for,
)
from atoll.storage.local_files import FileRefused, opened

MAX_RAWCODE = 1 << 20


class Authorizer(Protocol):
    """Decides whether ``consumer`` may run a job on ``dataset`` under ``agreement_id``, and
    counts jobs against agreements. The on-chain Service Agreement check implements this."""

    async def authorize(self, consumer: str, dataset: DDO, agreement_id: str) -> None: ...

    async def reserve(self, job_id: str, agreement_ids: list[str]) -> None:
        """Count job ``job_id`` against each agreement, all or none, in one transaction with
        the job's record as "starting"."""
        ...

    async def release(self, job_id: str) -> None:
        """Give back what :meth:`reserve` counted, when the job was not registered."""
        ...

    async def job_started(self, job: JobInfo) -> None:
        """The operator has the job: follow it to its end."""
        ...


class DatasetRef(BaseModel):
    """A dataset of the job, and the agreement the consumer holds for it."""

    did: str = Field(min_length=1, max_length=80)
    agreementId: str = Field(default="", max_length=80)


class AlgorithmRef(BaseModel):
    """The algorithm: a published one by DID, or raw code (one of the two). Raw code may name
    the container it runs in (as Ocean's raw algorithm meta does); a published algorithm's
    container is the one its DDO declares."""

    did: str = Field(default="", max_length=80)
    rawcode: str = ""
    container: AlgorithmContainer | None = None


class JobRequest(BaseModel):
    """What a consumer asks to run: on which datasets (each under its agreement), which
    algorithm with which parameters, where and with what resources. The routes take it as
    their body, with the signature (and, to start, where the outputs go) beside it."""

    dataset: DatasetRef
    additionalDatasets: list[DatasetRef] = Field(default_factory=list, max_length=32)
    algorithm: AlgorithmRef
    parameters: dict[str, Any] = Field(default_factory=dict)
    environment: str = "default"
    resources: Resources | None = None

    @property
    def datasets(self) -> list[DatasetRef]:
        return [self.dataset, *self.additionalDatasets]


class ComputeService:
    """Checks, quotes, starts and serves jobs: a consumer sees and touches only its own."""

    def __init__(
        self,
        assets: AssetStore,
        registry: WorkflowRegistry,
        authorizer: Authorizer,
        environments: list[Environment],
        hosts: HostRules | None = None,
        roots: DataRoots | None = None,
        job_user: tuple[int, int] = (65534, 65534),
        held_dir: Path | None = None,
        images: ImageRules | None = None,
    ) -> None:
        self.assets = assets
        self.registry = registry
        self.authorizer = authorizer
        self.environments = {e.id: e for e in environments}
        #: which hosts a job's network may reach
        self.hosts = hosts or HostRules()
        #: where datasets may lie; none given, no file is served to a job
        self.roots = roots or DataRoots([], Path("/nonexistent"))
        self.job_user = job_user
        #: where the provider keeps the files of derived assets
        self.held_dir = os.path.realpath(held_dir) if held_dir is not None else ""
        #: the registries images may come from; none listed, no container job is accepted
        self.images = images or ImageRules()

    def environment(self, env_id: str) -> Environment:
        try:
            return self.environments[env_id]
        except KeyError:
            raise BadRequest(
                f"unknown compute environment {env_id!r}; "
                f"available: {', '.join(sorted(self.environments))}"
            ) from None

    def _algorithm(self, algo: AlgorithmRef) -> DDO | None:
        if bool(algo.did) == bool(algo.rawcode):
            raise BadRequest("give the algorithm either as a DID or as raw code, not both")
        if algo.rawcode:
            if len(algo.rawcode.encode()) > MAX_RAWCODE:
                raise BadRequest(f"raw algorithm code is limited to {MAX_RAWCODE} bytes")
            return None
        if algo.container is not None:
            raise BadRequest("a published algorithm runs in the container its DDO declares")
        return self.assets.get(algo.did)

    def _container(self, algo: AlgorithmRef, algorithm: DDO | None) -> AlgorithmContainer | None:
        if algorithm is None:
            return algo.container
        container = algorithm_container(algorithm)
        if container is not None and not container.checksum:
            raise PolicyRefused(f"{algorithm.id} names its image without a digest")
        return container

    async def build_workflow(
        self,
        consumer: str,
        req: JobRequest,
        publish_output: PublishOutput | None = None,
        authorize: bool = True,
        inputs_for: Callable[[DDO], Awaitable[WorkflowInput]] | None = None,
    ) -> Workflow:
        """The workflow of a job, every check passed; ``inputs_for`` gives a dataset's input
        instead of its real files (a dry run's mock data)."""
        datasets, algo = req.datasets, req.algorithm
        if not datasets:
            raise BadRequest("a job needs at least one dataset")
        if len({d.did for d in datasets}) != len(datasets):
            raise BadRequest("a dataset is listed twice")
        env = self.environment(req.environment)
        granted = env.grant(req.resources)
        algorithm = self._algorithm(algo)
        container = self._container(algo, algorithm)
        # what a trust list's containerSectionChecksum pins: the image and entrypoint, or
        # the environment's host runtime
        runtime = section_checksum(container) if container and container.checksum else ""
        ddos = [self.assets.get(d.did) for d in datasets]
        rules = set()
        for ddo in ddos:
            if ddo.metadata.type != "dataset":
                raise BadRequest(f"{ddo.id} is not a dataset")
            rules.add(check_algorithm(ddo, algorithm, runtime or env.runtime_checksum()))
        # the registry and the environment's allowlist are checked before anything is
        # contacted; only a raw algorithm's tag is resolved here, at its listed registry
        run = (
            await anyio.to_thread.run_sync(self.images.run, container, env)
            if container is not None
            else None
        )
        declared = (
            algorithm.metadata.algorithm.consumerParameters
            if algorithm is not None and algorithm.metadata.algorithm is not None
            else []
        )
        custom = (
            validate_parameters(declared, req.parameters) if algorithm else dict(req.parameters)
        )
        if authorize:
            for ddo, ds in zip(ddos, datasets, strict=True):
                await self.authorizer.authorize(consumer, ddo, ds.agreementId)
        inputs = []
        for ddo in ddos:
            if inputs_for is not None:
                inputs.append(await inputs_for(ddo))
                continue
            # hashing a changed file may take a while: off the event loop
            files = await anyio.to_thread.run_sync(
                confirm_files, self.assets, ddo, self.roots, self.job_user, self.held_dir
            )
            inputs.append(
                WorkflowInput(
                    did=ddo.id,
                    ddo=ddo.public_json(),
                    locations=[f.location for f in files],
                    files=files,
                )
            )
        if algorithm is None:
            wf_algo = WorkflowAlgorithm(
                rawcode=algo.rawcode,
                checksum=hashlib.sha256(algo.rawcode.encode()).hexdigest(),
                customData=custom,
                container=run,
            )
        else:
            code = self._verified_code(algorithm)
            wf_algo = WorkflowAlgorithm(
                did=algorithm.id,
                ddo=algorithm.public_json(),
                location=code.location,
                checksum=code.sha256,
                customData=custom,
                container=run,
            )
        return Workflow(
            owner=consumer,
            agreementId=datasets[0].agreementId,
            agreements=[d.agreementId.lower() for d in datasets],
            trust=",".join(sorted(rules)),
            publishOutput=publish_output,
            environment=req.environment,
            resources=granted,
            egress=await self._egress(ddos, env),
            inputs=inputs,
            algorithm=wf_algo,
        )

    async def _egress(self, ddos: list[DDO], env: Environment) -> list[str]:
        """The hosts the job may reach, each checked again now: names resolve differently
        over time, and the operator's settings may have changed since publishing."""
        hosts = egress_for(ddos, env)
        try:
            await anyio.to_thread.run_sync(self.hosts.check, hosts)  # resolving blocks
        except BadRequest as exc:
            raise PolicyRefused(f"{exc.message}; the job cannot have network") from None
        return hosts

    def _verified_code(self, algorithm: DDO) -> PrivateFile:
        """The algorithm's code file, if it is still what was published (and trusted)."""
        code = self.assets.files(algorithm.id)[0]
        try:
            with opened(code.location) as f:
                digest = f.sha256()
        except (OSError, FileRefused):
            raise PolicyRefused(f"the code of {algorithm.id} is no longer available") from None
        if digest != code.sha256:
            raise PolicyRefused(f"the code of {algorithm.id} has changed since it was published")
        return code

    async def quote(self, consumer: str, req: JobRequest) -> dict[str, Any]:
        """Everything a start would check but the agreement, and what it would cost."""
        wf = await self.build_workflow(consumer, req, authorize=False)
        # a node whose storage is full says so now, before the consumer pays
        await self.registry.admit(wf)
        env = self.environment(req.environment)
        prices = []
        for d in req.datasets:
            service = self.assets.get(d.did).service("compute")
            prices.append(
                {"did": d.did, "serviceId": "compute", "price": service.price if service else 0}
            )
        minutes = (wf.resources.maxDuration or env.max_duration) / 60
        return {
            "datasets": prices,
            "algorithm": {
                "did": req.algorithm.did,
                "raw": bool(req.algorithm.rawcode),
                "container": wf.algorithm.container.model_dump()
                if wf.algorithm.container
                else None,
            },
            "environment": env.public(self.images.hosts),
            "resources": wf.resources.model_dump(),
            "network": bool(wf.egress),
            "maxEnvironmentCost": env.price_per_minute * minutes,
        }

    async def start(
        self, consumer: str, req: JobRequest, publish_output: PublishOutput | None = None
    ) -> JobInfo:
        """Count the job, register it, follow it. The job id is chosen here so that the
        count and the operator's job can be matched after a crash at any step: a job counted
        but never registered is given back at the next start, a job registered but not yet
        followed is followed (:func:`atoll.provider.starts.reconcile_starts`)."""
        workflow = await self.build_workflow(consumer, req, publish_output)
        workflow = workflow.model_copy(update={"jobId": uuid.uuid4().hex})
        agreements = [d.agreementId for d in req.datasets if d.agreementId]
        await self.authorizer.reserve(workflow.jobId, agreements)
        faults.point("start.reserved")
        try:
            info = await self.registry.register(workflow)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                found = await self._registered(workflow.jobId)
                if found is not None and not isinstance(exc, Exception):
                    await self.authorizer.job_started(found)  # cancelled, but it will run
            if found is None or not isinstance(exc, Exception):
                raise
            info = found  # the operator took the job; only its answer was lost
        faults.point("start.registered")
        await self.authorizer.job_started(info)
        faults.point("start.tracked")
        return info

    async def _registered(self, job_id: str) -> JobInfo | None:
        """After a failed registration: the job if the operator has it; if it surely has
        not, its count is given back. Unknown (the operator unreachable): the next start
        decides."""
        try:
            return await self.registry.status(job_id)
        except NotFound:
            await self.authorizer.release(job_id)
        except Exception:
            pass
        return None

    async def owned(self, consumer: str, job_id: str) -> JobInfo:
        """The job if ``consumer`` owns it. Another consumer's job is reported as unknown, so
        that job ids cannot be probed."""
        if not job_id:
            raise BadRequest("jobId is required")
        try:
            info = await self.registry.status(job_id)
        except NotFound:
            info = None
        if info is None or info.owner.lower() != consumer.lower():
            raise NotFound(f"no job {job_id} for this consumer")
        return info

    async def status(
        self, consumer: str, job_id: str, wait: float = 0, since: int | None = None
    ) -> list[JobInfo]:
        if not job_id:
            return await self.registry.list(consumer)
        info = await self.owned(consumer, job_id)
        if wait > 0:
            info = await self.registry.wait(job_id, wait, since)
        return [info]

    async def page(self, consumer: str, offset: int, limit: int) -> tuple[int, list[JobInfo]]:
        """A page of the consumer's own jobs, newest first, and how many there are: read a
        page at a time where the registry can, else from the whole list."""
        paged = getattr(self.registry, "page", None)
        if paged is not None:
            found: tuple[int, list[JobInfo]] = await paged(consumer, offset, limit)
            return found
        everything = sorted(
            await self.registry.list(consumer),
            key=lambda j: (j.dateCreated, j.jobId),
            reverse=True,
        )
        return len(everything), everything[offset : offset + limit]

    async def stop(self, consumer: str, job_id: str) -> JobInfo:
        await self.owned(consumer, job_id)
        return await self.registry.stop(job_id)

    async def delete(self, consumer: str, job_id: str) -> JobInfo:
        await self.owned(consumer, job_id)
        return await self.registry.delete(job_id)

    async def logs(self, consumer: str, job_id: str, follow: bool) -> AsyncIterator[bytes]:
        undelivered_refused(await self.owned(consumer, job_id))
        return self.registry.logs(job_id, follow)

    async def result(
        self, consumer: str, job_id: str, index: int
    ) -> tuple[ResultFile, AsyncIterator[bytes]]:
        undelivered_refused(await self.owned(consumer, job_id))
        return await self.registry.result(job_id, index)

    async def results(self, consumer: str, job_id: str, offset: int, limit: int) -> ResultsPage:
        undelivered_refused(await self.owned(consumer, job_id))
        return await self.registry.results(job_id, offset, limit)


def undelivered_refused(info: JobInfo) -> None:
    """A job that ended without delivering (or whose outputs were rejected) serves nothing:
    what it printed could otherwise stand in for outputs nobody paid for."""
    if info.terminal and not served(info.status):
        status = JobStatus(info.status)
        raise Forbidden(
            f"job {info.jobId} ended with status {int(status)} ({status.text}): "
            "nothing of it is served"
        )
