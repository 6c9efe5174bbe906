"""The Operator-Engine: runs registered workflows as configure → run → publish.

A job starts the moment a worker slot is free (a thread pool's own queue, no polling); each
status change is written to the store first and then announced through the notifier, so a
waiting client hears of it at once and a crash never loses a change that was announced.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from atoll.engine.blame import job_caused
from atoll.engine.executor import (
    Execution,
    ExecutionLost,
    ExecutionResult,
    ExecutionSpec,
    Executor,
    ExitReason,
    InputChanged,
    InputUnreadable,
    Limits,
    Mount,
    Runtime,
    SandboxUnavailable,
)
from atoll.engine.image_runtime import (
    ALGORITHM_PATH,
    PullProgress,
    PullStopped,
    checked_reference,
    image_run,
    image_status,
    image_status_text,
)
from atoll.engine.jobstore import JobStore
from atoll.engine.notify import Notifier
from atoll.engine.outputs import (
    DEFAULT_MAX_FILES,
    DEFAULT_MAX_NAME_BYTES,
    OutputRules,
    publish,
    result_key,
)
from atoll.engine.queue import EnvironmentQueues
from atoll.engine.workspace import FetchProgress, ProvisioningError, Workspace, changed_inputs
from atoll.errors import Conflict, Unavailable
from atoll.images.errors import ImageError
from atoll.images.store import ImageStore
from atoll.models.environment import Environment, Resources
from atoll.models.job import ContainerRun, ResultFile, Workflow
from atoll.models.status import JobStatus
from atoll.storage import InputSource, LocalInputs, LocalResults, ResultStore, StorageError

log = logging.getLogger("atoll.engine")
#: what a hook is told of a job: its results, or its log
_Told = TypeVar("_Told")

_REASON_STATUS = {
    ExitReason.TIMEOUT: JobStatus.TIME_LIMIT_EXCEEDED,
    ExitReason.CPU_TIME: JobStatus.TIME_LIMIT_EXCEEDED,
    ExitReason.OUT_OF_MEMORY: JobStatus.MEMORY_LIMIT_EXCEEDED,
    ExitReason.OUTPUT_LIMIT: JobStatus.DISK_QUOTA_EXCEEDED,
    ExitReason.STOPPED: JobStatus.STOPPED,
    ExitReason.LOST: JobStatus.INTERRUPTED,
}


MIB = 1024**2

#: how a dataset's URL or S3 source failed (atoll.storage.errors.SourceError.kind)
SOURCE_STATUS = {
    "unavailable": JobStatus.SOURCE_UNAVAILABLE,
    "limit": JobStatus.SOURCE_LIMIT_EXCEEDED,
    "refused": JobStatus.SOURCE_REFUSED,
}


@dataclass(frozen=True)
class EngineConfig:
    jobs_dir: Path
    environments: list[Environment]
    max_attempts: int = 2
    #: what a job may leave in its outputs and logs to have them published
    max_output_files: int = DEFAULT_MAX_FILES
    max_output_name_bytes: int = DEFAULT_MAX_NAME_BYTES
    #: uid and gid a job's input files must be reachable by, every directory on the way
    job_user: tuple[int, int] | None = None
    #: the node's space for results, logs and inputs, in bytes; past it new jobs are
    #: refused. 0: no cap
    node_disk_bytes: int = 0


def limits_for(env: Environment, granted: Resources) -> Limits:
    """The sandbox limits of a job: its environment's, narrowed to what the job asked for."""
    cpus = granted.cpu or env.cpu
    wall = granted.maxDuration or env.max_duration
    disk = (granted.diskMb or env.disk_mb) * MIB
    return Limits(
        memory_bytes=(granted.memoryMb or env.memory_mb) * MIB,
        pids=env.pids,
        cpus=cpus,
        # CPU time can't exceed what the CPUs could burn in the wall time, plus a second
        cpu_seconds=int(wall * max(cpus, 1)) + 1,
        wall_seconds=wall,
        file_size_bytes=disk,
        output_bytes=disk,
        log_bytes=env.log_mb * MIB,
    )


def runtime_for(env: Environment) -> Runtime:
    return Runtime(Path(env.runtime_interpreter), tuple(Path(p) for p in env.runtime_paths))


class Engine:
    """Runs jobs: takes them from the store's queue, prepares their inputs, hands them to the
    executor and keeps their results. ``inputs`` and ``results`` default to the local storage
    backend (results under ``jobs_dir``)."""

    def __init__(
        self,
        store: JobStore,
        executor: Executor,
        config: EngineConfig,
        notifier: Notifier,
        *,
        inputs: InputSource | None = None,
        results: ResultStore | None = None,
        inputs_usage: Callable[[], int] | None = None,
        images: ImageStore | None = None,
    ) -> None:
        self.store = store
        #: the node's images, for jobs whose algorithm names one; None: no registry is listed
        self.images = images
        self.executor = executor
        self.inputs: InputSource = inputs or LocalInputs()
        self.results: ResultStore = results or LocalResults(config.jobs_dir)
        self.config = config
        self.notifier = notifier
        self.environments = {e.id: e for e in config.environments}
        self._queues = EnvironmentQueues(config.environments, self._run, self._expire)
        #: jobs a worker holds, from its first status change until it lets go
        self._active: set[str] = set()
        self._running: dict[str, Execution] = {}
        self._lock = threading.Lock()
        #: bytes the node's cached inputs take (a remote input source's cache); none: 0
        self._inputs_usage = inputs_usage
        #: what each job not yet ended may write (outputs and logs), until it ends
        self._reserved: dict[str, int] = {}
        #: told of a job's results (its id, its datasets' ids, the files) once they are kept,
        #: before its sandbox is released and its end recorded: what reads them next (the
        #: provider's checks) can begin while that is done
        self.on_published: Callable[[str, list[str], list[ResultFile]], None] | None = None
        #: told of a job whose sandbox has exited (its id, its datasets' ids, and its log,
        #: which the engine wrote and which is whole from then on), before its outputs are
        #: measured and kept: the log's checks can begin while that is done
        self.on_exited: Callable[[str, list[str], Path], None] | None = None

    def workspace(self, job_id: str) -> Workspace:
        return Workspace(self.config.jobs_dir / job_id)

    def open_result(self, job_id: str, index: int) -> BinaryIO:
        """A published result file of the job as a stream the caller closes; raises
        ObjectNotFound."""
        return self.results.open(result_key(job_id, index))

    @property
    def results_local(self) -> bool:
        """Whether results lie on this host's disk (then a caller here may link them)."""
        return isinstance(self.results, LocalResults)

    def local_result(self, job_id: str, index: int) -> Path | None:
        """Where a published result lies on this host; None when the result store is not a
        local one (then :meth:`open_result` streams it)."""
        if isinstance(self.results, LocalResults):
            return self.results.local_path(result_key(job_id, index))
        return None

    # -- lifecycle -------------------------------------------------------------------------

    def recover(self) -> None:
        """Bring every job a previous process left in flight to a terminal status or back to
        the queue. Called once, before the API accepts requests. A running job whose execution
        the executor can still attach to (by the id recorded when it started) is waited for
        and published as if nothing had happened; everything else the old process left is
        cleaned up by the executor first."""
        survivors = self._attach_survivors()
        self.executor.recover(keep=[execution.execution_id for _, execution, _ in survivors])
        self.store.adopt_old_results()
        resumed = {job_id for job_id, _, _ in survivors}
        for rec in self.store.in_flight():
            if rec.job_id in resumed:
                continue
            if rec.status == JobStatus.QUEUED and rec.stopreq == 0:
                self.submit(rec.job_id)
            elif rec.stopreq:
                self._finish(rec.job_id, JobStatus.STOPPED)
            elif rec.attempts < self.config.max_attempts:
                self.store.advance(
                    rec.job_id, JobStatus.QUEUED, "Queued again after a provider restart"
                )
                self.submit(rec.job_id)
            else:
                self._finish(
                    rec.job_id,
                    JobStatus.INTERRUPTED,
                    f"Interrupted by a provider restart after {rec.attempts} attempts",
                )
        for job_id, execution, mounts in survivors:
            with self._lock:
                self._active.add(job_id)
                self._running[job_id] = execution
            threading.Thread(
                target=self._resume,
                args=(job_id, execution, mounts),
                name=f"atoll-resume-{job_id}",
                daemon=True,
            ).start()

    def _attach_survivors(self) -> list[tuple[str, Execution, list[Mount]]]:
        """The running jobs of an earlier process that the executor still runs."""
        found: list[tuple[str, Execution, list[Mount]]] = []
        for rec in self.store.in_flight():
            if rec.status != JobStatus.RUNNING or rec.stopreq:
                continue
            recorded = self.workspace(rec.job_id).recorded_execution()
            if recorded is None:
                continue
            execution_id, mounts = recorded
            try:
                execution = self.executor.attach(execution_id)
            except ExecutionLost:
                continue
            log.info("job %s: attached to its execution after a restart", rec.job_id)
            found.append((rec.job_id, execution, mounts))
        return found

    def _resume(self, job_id: str, execution: Execution, mounts: list[Mount]) -> None:
        try:
            rec = self.store.record(job_id)
            env = self.environments.get(rec.workflow.environment)
            limits = limits_for(env, rec.workflow.resources) if env is not None else Limits()
            result = execution.wait()
            ending = self._conclude(job_id, rec.workflow, execution, result, mounts, limits)
        except Exception:
            log.exception("job %s: unexpected engine error", job_id)
            ending = _Ending(JobStatus.RESULTS_UPLOAD_FAILED, "Internal engine error")
        finally:
            with self._lock:
                self._running.pop(job_id, None)
                self._active.discard(job_id)
        self._finish(job_id, ending.status, ending.text, ending.results)

    def shutdown(self) -> None:
        with self._lock:
            running = list(self._running.values())
        for execution in running:
            execution.cancel()
        self._queues.shutdown()
        self.executor.close()

    # -- operations ------------------------------------------------------------------------

    def submit(self, job_id: str) -> None:
        rec = self.store.record(job_id)
        env = self.environments.get(rec.workflow.environment)
        if env is None:
            self._finish(
                job_id,
                JobStatus.SANDBOX_UNAVAILABLE,
                f"Environment {rec.workflow.environment!r} is no longer offered",
            )
            return
        with self._lock:
            self._reserved[job_id] = _reservation(env, rec.workflow.resources)
        self._queues.submit(env.id, job_id, rec.created + env.queue_max_wait)

    def _expire(self, job_id: str) -> None:
        if self.store.advance_from(job_id, JobStatus.QUEUED, JobStatus.QUEUE_EXPIRED):
            with self._lock:
                self._reserved.pop(job_id, None)
            self.notifier.notify(job_id)

    # -- the node's space ------------------------------------------------------------------

    def disk_in_use(self) -> int:
        """Bytes of the node's disk that results (in a local store), cached inputs and the
        jobs not yet ended (what each may still write) take or may take."""
        stored = self.store.stored_bytes() if self.results_local else 0
        with self._lock:
            reserved = sum(self._reserved.values())
        cached = self._inputs_usage() if self._inputs_usage is not None else 0
        return stored + reserved + cached

    def admit(self, workflow: Workflow) -> None:
        """Refuse a new job (Unavailable, 503) when what it may write would take the node
        past its space: it waits for results to expire or be deleted, not for a disk that
        fills up under running jobs."""
        cap = self.config.node_disk_bytes
        env = self.environments.get(workflow.environment)
        if cap <= 0 or env is None:
            return
        used = self.disk_in_use()
        if used + _reservation(env, workflow.resources) > cap:
            raise Unavailable(
                f"this node's storage is full ({used // MIB} MiB of its {cap // MIB} MiB taken "
                "by results, inputs and running jobs); try again once results expire or "
                "are deleted"
            )

    def free(self, job_id: str) -> None:
        """Delete the job's results and logs from the result store, and its directory here
        (idempotent: a deletion cut short is finished by the next call)."""
        self.results.delete(job_id)
        shutil.rmtree(self.workspace(job_id).root, ignore_errors=True)

    def stop(self, job_id: str) -> None:
        self.store.request_stop(job_id)
        if self.store.runs_elsewhere(self.store.record(job_id)):
            # its replica hears of the request (:meth:`heard`) and stops it there
            self.notifier.notify(job_id)
            return
        with self._lock:
            execution = self._running.get(job_id)
            active = job_id in self._active
        if execution is not None:
            execution.cancel()
        elif not active:
            # still queued: its worker will find the job ended and skip it
            self._finish(job_id, JobStatus.STOPPED)
        # else a worker holds it between stages: it checks the stop request before it starts
        # the sandbox and again once the sandbox is registered, so the stop is never lost

    def heard(self, job_id: str) -> None:
        """Another replica sharing the store changed the job: a stop asked there reaches a
        job that runs or waits here."""
        with self._lock:
            here = job_id in self._reserved or job_id in self._active
        if not here:
            return
        rec = self.store.record(job_id)
        if rec.stopreq and not rec.status.terminal:
            self.stop(job_id)

    def delete(self, job_id: str) -> None:
        rec = self.store.record(job_id)
        with self._lock:
            active = job_id in self._active
        if not rec.status.terminal or active:
            raise Conflict("the job is still running; stop it before deleting it")
        self.free(job_id)
        self.store.mark_removed(job_id)
        self.notifier.notify(job_id)

    # -- the job ---------------------------------------------------------------------------

    def _advance(self, job_id: str, status: JobStatus, text: str = "") -> bool:
        moved = self.store.advance(job_id, status, text)
        self.notifier.notify(job_id)
        return moved

    def _finish(
        self,
        job_id: str,
        status: JobStatus,
        text: str = "",
        results: list[ResultFile] | None = None,
    ) -> None:
        values: dict[str, float] = {}
        env = self.environments.get(self.store.record(job_id).workflow.environment)
        if status.terminal and env is not None and env.storage_expiry > 0:
            values["expires_at"] = time.time() + env.storage_expiry
        self.store.advance(job_id, status, text, results=results, **values)
        if status.terminal:
            with self._lock:
                self._reserved.pop(job_id, None)
            # what the job wrote is in the result store now: its working copy would take
            # the space twice until the results expire
            shutil.rmtree(self.workspace(job_id).work, ignore_errors=True)
        self.notifier.notify(job_id)

    def _fetch_progress(self, job_id: str) -> FetchProgress:
        """Show how the fetch of a remote dataset file goes in the job's status text, while
        it is configuring (Ocean's stage for it), at most every half second."""
        last = [0.0]

        def told(where: str, done: int, size: int | None) -> None:
            now = time.monotonic()
            if now - last[0] < 0.5 and (size is None or done < size):
                return
            last[0] = now
            got = f"{done / MIB:.1f} MiB"
            if size:
                got = f"{done * 100 // size}% ({got} of {size / MIB:.1f} MiB)"
            text = f"{JobStatus.CONFIGURING.text}: fetching {where}: {got}"
            if self.store.advance_from(job_id, JobStatus.CONFIGURING, JobStatus.CONFIGURING, text):
                self.notifier.notify(job_id)

        return told

    def _run(self, job_id: str) -> None:
        with self._lock:
            self._active.add(job_id)
        ending: _Ending | None
        try:
            ending = self._run_stages(job_id)
        except Exception:
            # never leave a job running forever because of a bug in a stage
            log.exception("job %s: unexpected engine error", job_id)
            ending = _Ending(JobStatus.RESULTS_UPLOAD_FAILED, "Internal engine error")
        finally:
            with self._lock:
                self._active.discard(job_id)
        # the end is announced only once the worker has let go of the job, so that whoever
        # hears of it may delete it at once
        if ending is not None:
            self._finish(job_id, ending.status, ending.text, ending.results)

    def _run_stages(self, job_id: str) -> _Ending | None:
        rec = self.store.record(job_id)
        container = rec.workflow.algorithm.container
        if container is None:
            if not self.store.start_attempt(job_id):
                return None  # stopped while queued
            self.notifier.notify(job_id)
            env = self.environments[rec.workflow.environment]
            return self._configure_and_run(job_id, runtime_for(env), [ALGORITHM_PATH], {})
        return self._run_in_image(job_id, rec.workflow, container)

    def _run_in_image(
        self, job_id: str, workflow: Workflow, container: ContainerRun
    ) -> _Ending | None:
        """Check the job's image, have it from the cache (pulling it, the job's status
        showing how far), and run the job in it; the image stays in the cache until the job's
        outputs are published."""
        env = self.environments[workflow.environment]
        try:
            reference = checked_reference(container, env, self.images)
        except ImageError as exc:
            if not self.store.start_attempt(job_id):
                return None
            return _Ending(image_status(exc), image_status_text(exc))
        assert self.images is not None  # checked_reference refuses a node without a store
        cached = self.images.cache.contains(reference.digest or "")
        first = JobStatus.CONFIGURING if cached else JobStatus.PULLING_IMAGE
        if not self.store.start_attempt(job_id, first):
            return None
        self.notifier.notify(job_id)
        progress = PullProgress(
            lambda text: self._advance(job_id, JobStatus.PULLING_IMAGE, text),
            lambda: bool(self.store.record(job_id).stopreq),
        )
        try:
            with self.images.acquire(reference, progress) as image:
                pulled = not cached or progress.reported
                if pulled and not self._advance(job_id, JobStatus.CONFIGURING):
                    return None
                run = image_run(image, container)
                return self._configure_and_run(job_id, run.runtime, run.args, run.env)
        except PullStopped:
            return _Ending(JobStatus.STOPPED)
        except ImageError as exc:
            log.info("job %s: image %s refused: %s", job_id, reference.digest, exc.code)
            return _Ending(image_status(exc), image_status_text(exc))
        except OSError as exc:
            # the cache's disk, not the image: said without its host path
            log.error("job %s: the image cache failed: %s", job_id, exc.strerror)
            status = JobStatus.IMAGE_PULL_FAILED
            return _Ending(status, f"{status.text}: the image could not be stored")

    def _configure_and_run(
        self, job_id: str, runtime: Runtime, args: list[str], image_env: dict[str, str]
    ) -> _Ending | None:
        rec = self.store.record(job_id)
        ws = self.workspace(job_id)
        ws.reset()
        self.results.delete(f"{job_id}/results")
        try:
            mounts = ws.configure(
                rec.workflow, self.inputs, self.config.job_user, self._fetch_progress(job_id)
            )
        except ProvisioningError as exc:
            if exc.changed:
                return _Ending(JobStatus.DATASET_CHANGED, f"{exc}; the job did not run")
            if exc.source:
                status = SOURCE_STATUS[exc.source]
                return _Ending(status, f"{status.text}: {exc}")
            status = (
                JobStatus.ALGORITHM_PROVISIONING_FAILED
                if exc.algorithm
                else JobStatus.DATA_PROVISIONING_FAILED
            )
            return _Ending(status, f"{status.text}: {exc}")
        env = self.environments[rec.workflow.environment]
        spec = ExecutionSpec(
            job_id=job_id,
            runtime=runtime,
            args=args,
            mounts=mounts,
            env={**image_env, **_job_env(rec.workflow)},
            outputs_dir=ws.outputs,
            logs_dir=ws.logs,
            limits=limits_for(env, rec.workflow.resources),
            # the provider decided the hosts; an environment without network never gets any
            egress=tuple(rec.workflow.egress) if env.network else (),
            # GPUs the environment declares; the executor gives those the host has
            gpus=env.gpus,
        )
        try:
            self.executor.check_inputs(spec)
        except InputUnreadable as exc:
            return _unreadable(rec.workflow, exc)
        if self.store.record(job_id).stopreq:
            return _Ending(JobStatus.STOPPED)
        if not self._advance(job_id, JobStatus.RUNNING):
            return None
        with ws.algorithm_log.open("ab") as log_file:

            def on_log(chunk: bytes) -> None:
                log_file.write(chunk)
                log_file.flush()
                self.notifier.notify(job_id)

            try:
                execution = self.executor.start(spec, on_log)
            except InputChanged as exc:
                return _Ending(JobStatus.DATASET_CHANGED, f"{exc}; the job did not run")
            except InputUnreadable as exc:
                return _unreadable(rec.workflow, exc)
            except SandboxUnavailable as exc:
                text = f"{JobStatus.SANDBOX_UNAVAILABLE.text}: {exc}"
                return _Ending(JobStatus.SANDBOX_UNAVAILABLE, text)
            with self._lock:
                self._running[job_id] = execution
            try:
                _note_execution(ws, execution, mounts)
                if self.store.record(job_id).stopreq:
                    execution.cancel()  # a stop that came while the sandbox was starting
                result = execution.wait()
            finally:
                with self._lock:
                    self._running.pop(job_id, None)
        return self._conclude(job_id, rec.workflow, execution, result, mounts, spec.limits)

    def _conclude(
        self,
        job_id: str,
        workflow: Workflow,
        execution: Execution,
        result: ExecutionResult,
        mounts: list[Mount],
        limits: Limits,
    ) -> _Ending:
        """Publish the ended job's outputs if its inputs held still, then release it."""
        try:
            if self.on_exited is not None:
                self._tell(self.on_exited, job_id, workflow, self.workspace(job_id).algorithm_log)
            changed = changed_inputs(self.inputs, workflow, mounts)
            if changed:
                # its outputs may come from other bytes than the receipt would name
                text = f"{', '.join(changed)} changed while the job ran; its results are withheld"
                return _Ending(JobStatus.DATASET_CHANGED, text)
            ending = self._publish(job_id, self.workspace(job_id), result, limits)
            if ending.results and self.on_published is not None:
                self._tell(self.on_published, job_id, workflow, ending.results)
            return ending
        finally:
            execution.release()

    def _tell(
        self,
        hook: Callable[[str, list[str], _Told], None],
        job_id: str,
        workflow: Workflow,
        what: _Told,
    ) -> None:
        """Tell ``hook`` of the job's ``what`` (its results, or its log)."""
        try:
            hook(job_id, [i.did for i in workflow.inputs], what)
        except Exception:
            # a head start only: the job's end reads its results anyway
            log.exception("job %s: what reads its results next could not be told of them", job_id)

    def _publish(
        self, job_id: str, ws: Workspace, result: ExecutionResult, limits: Limits
    ) -> _Ending:
        if result.reason is ExitReason.LOST:
            # what an attempt on machines that were lost left behind is no result of the job
            status = _REASON_STATUS[result.reason]
            return _Ending(status, result.detail or status.text)
        self._advance(job_id, JobStatus.PUBLISHING)
        rules = OutputRules(
            output_bytes=limits.output_bytes,
            log_bytes=limits.log_bytes,
            max_files=self.config.max_output_files,
            max_name_bytes=self.config.max_output_name_bytes,
        )
        try:
            published = publish(ws.outputs, ws.logs, ws.algorithm_log, self.results, job_id, rules)
        except StorageError as exc:
            return _Ending(JobStatus.RESULTS_UPLOAD_FAILED, f"Results could not be stored: {exc}")
        except (OSError, RecursionError) as exc:
            if job_caused(exc):
                detail = "too deep" if isinstance(exc, RecursionError) else exc.strerror
                text = f"{JobStatus.OUTPUTS_REJECTED.text} ({detail})"
                return _Ending(JobStatus.OUTPUTS_REJECTED, text)
            text = f"Results could not be stored: {getattr(exc, 'strerror', None) or 'error'}"
            return _Ending(JobStatus.RESULTS_UPLOAD_FAILED, text)
        note = published.note()
        payload = published.results
        if published.refused and result.reason in (ExitReason.EXITED, ExitReason.OUTPUT_LIMIT):
            # outputs past a limit: the job broke it, as if its space had filled up
            status = JobStatus.DISK_QUOTA_EXCEEDED
            said = result.detail if result.reason is ExitReason.OUTPUT_LIMIT else ""
            return _Ending(status, (said or status.text) + note, payload)
        if result.reason == ExitReason.EXITED and result.exit_code == 0:
            status, text = JobStatus.FINISHED, JobStatus.FINISHED.text
        elif result.reason == ExitReason.EXITED:
            status = JobStatus.ALGORITHM_FAILED
            text = f"Algorithm failed with exit code {result.exit_code}"
        else:
            status = _REASON_STATUS[result.reason]
            text = result.detail or status.text
        return _Ending(status, text + note, payload)


def _reservation(env: Environment, granted: Resources) -> int:
    """What a job may write: its outputs (as granted) and its logs."""
    return ((granted.diskMb or env.disk_mb) + env.log_mb) * MIB


@dataclass(frozen=True)
class _Ending:
    status: JobStatus
    text: str = ""
    results: list[ResultFile] | None = None


def _note_execution(ws: Workspace, execution: Execution, mounts: list[Mount]) -> None:
    try:
        ws.record_execution(execution.execution_id, mounts)
    except OSError as e:
        # the job runs on; only attaching to it after a restart is lost
        log.warning("cannot record the execution of a job: %s", e.strerror)


def _unreadable(wf: Workflow, exc: InputUnreadable) -> _Ending:
    """A publisher's file the job could not read: the publisher's to fix, said as the file's
    place in the workflow."""
    where = "an input"
    for inp in wf.inputs:
        for index in range(len(inp.files)):
            if exc.target == f"/data/inputs/{inp.did}/{index}":
                where = f"file {index} of {inp.did}"
    status = JobStatus.DATA_PROVISIONING_FAILED
    text = (
        f"{status.text}: {where} is not readable by the sandbox user "
        "(the publisher must make it readable by others)"
    )
    return _Ending(status, text)


def _job_env(wf: Workflow) -> dict[str, str]:
    return {
        "DIDS": json.dumps([i.did for i in wf.inputs]),
        "TRANSFORMATION_DID": wf.algorithm.did,
        "VOLUME": "/data",
        "INPUTS": "/data/inputs",
        "OUTPUTS": "/data/outputs",
        "LOGS": "/data/logs",
    }
