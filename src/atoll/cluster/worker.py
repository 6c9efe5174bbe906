"""The worker side: a Dask worker that runs Atoll's jobs, and only those, in its node's own
sandbox.

:class:`AtollWorkerPlugin` holds the node's :class:`~atoll.engine.sandbox.SandboxExecutor`
and is given to the worker when ``atoll worker`` builds it (never sent by a client: the
worker's ``plugin-add`` handler is refused). When it is set up it

- checks the sandbox: a node that cannot build it refuses every job (fail closed);
- refuses every task that is not :func:`run_job` or :func:`stop_job` called with a single
  string: before the worker runs a task, the task's function is compared with these two, and
  anything else runs :func:`refused` instead, which raises;
- refuses the worker's handlers that run a client's code outside tasks (``run``,
  ``run_coroutine``, ``plugin-add``, ``upload_file``, actors);
- answers the operator's direct release of an ended job (``atoll_release``, see below).

A task's function arrives pickled, and unpickling alone can run code: the check above keeps
a worker from running other tasks by mistake, while what keeps strangers from sending any is
the closed cluster (mutual TLS, :mod:`atoll.cluster.certs`).

A job's events (started or refused, its log as it comes, its end, its release) go to the
scheduler's ``atoll-jobs`` topic, which the operator's client is subscribed to.

The operator releases an ended job straight on its worker (:data:`RELEASE_HANDLER`, called
with the execution id only), and the worker answers once the job's sandbox is freed: one round
trip rather than the task's cancel through the scheduler and the release event back through
it. The task's cancel still follows; whichever of the two comes first releases the job, and
its sandbox is freed once, by the thread that ran it. Only the operator's certificate may call
the handler (a worker's, also the cluster's, may not), and only for an ended job of this
worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dask._task_spec import Task
from distributed import WorkerPlugin, get_worker
from distributed.comm.core import Comm
from distributed.core import ErrorMessage, error_message
from distributed.worker import Worker

from atoll.cluster.certs import common_name
from atoll.cluster.shipping import ShippingError, pack_outputs, stage, unstage
from atoll.cluster.sources import SourceRules, fetch_on_worker
from atoll.cluster.wire import TOPIC, dump_result, load_extra, load_spec, task_key
from atoll.engine.executor import (
    ExecutionSpec,
    InputChanged,
    InputUnreadable,
    SandboxUnavailable,
)
from atoll.engine.sandbox import SandboxExecution, SandboxExecutor, mounts
from atoll.storage.cache import SourceCache
from atoll.storage.errors import InputModified, InputUnavailable

log = logging.getLogger(__name__)

PLUGIN_NAME = "atoll"
#: the worker's handler of the operator's direct release of an ended job
RELEASE_HANDLER = "atoll_release"
#: how long that handler waits for the job's sandbox to be freed before saying it was not
RELEASE_WAIT = 30.0
#: handlers of a Dask worker that would run a client's code outside Atoll's job function
REFUSED_HANDLERS = (
    "run",
    "run_coroutine",
    "plugin-add",
    "plugin-remove",
    "upload_file",
    "actor_execute",
    "actor_attribute",
)


class NotAnAtollTask(PermissionError):
    """The worker was sent a task that is not Atoll's job function."""


@dataclass
class _Job:
    """A job this worker runs, from its start until the operator releases it."""

    execution_id: str
    execution: SandboxExecution | None = None
    #: the spec as run in this worker's own job directory; None: in the operator's paths
    staged: ExecutionSpec | None = None
    ended: bool = False
    #: the operator released the job straight on this worker and waits for the answer,
    #: which tells it the sandbox is freed: no release event is sent it (``freed`` is set
    #: and this read under ``lock``)
    answered: bool = False
    #: set when the operator released the job (or Dask cancelled its task)
    released: threading.Event = field(default_factory=threading.Event)
    #: set once the job's sandbox (and directory of this worker's own) is gone
    freed: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: called (under ``lock``) once ``freed`` is set: wakes a direct release's answer on the
    #: worker's event loop, with no thread of its own waiting for it
    on_freed: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        with self.lock:
            if self.execution is not None:
                self.execution.cancel()


class AtollWorkerPlugin(WorkerPlugin):
    """The node's engine on a Dask worker; see the module's text."""

    name = PLUGIN_NAME

    def __init__(
        self,
        executor: SandboxExecutor,
        *,
        jobs_dir: Path | None = None,
        cache: SourceCache | None = None,
    ) -> None:
        self.executor = executor
        #: this worker's own job directory (:mod:`atoll.cluster.shipping`); None: the
        #: operator's paths are valid here (same host or a shared filesystem)
        self.jobs_dir = jobs_dir
        #: where URL and S3 sources are fetched to on this worker
        self.cache = cache
        self.refusal: str | None = None
        self.worker: Worker | None = None
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        #: called with each event a job posts (the worker's metrics count them)
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    # -- set up ---------------------------------------------------------------------------

    def setup(self, worker: Worker) -> None:
        self.worker = worker
        # a job's events go to the scheduler as they come: Dask holds a worker's messages
        # 2 ms apart, and a short job's end waited there behind its last log
        worker.batched_stream.interval = 0
        guard(worker)
        worker.handlers[RELEASE_HANDLER] = self.release_direct
        quiet_task_arguments()
        try:
            self.executor.check()
        except SandboxUnavailable as e:
            # the worker stays up to say so, but takes no job
            self.refusal = str(e)
            log.error("this node refuses jobs: %s", e)

    def teardown(self, worker: Worker) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop()
            job.released.set()

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        # Dask cancelled or released a job's task (the operator released the job, forced a
        # cancel, or went away): its sandbox goes with it
        if finish in ("cancelled", "released", "forgotten") and isinstance(key, str):
            with self._lock:
                job = self._jobs.get(key)
            if job is not None:
                job.stop()
                job.released.set()

    # -- jobs -----------------------------------------------------------------------------

    def _post(self, execution_id: str, to_operator: bool = True, **values: Any) -> None:
        assert self.worker is not None
        if to_operator:
            self.worker.log_event(TOPIC, {"id": execution_id, **values})
        for listener in self.listeners:
            listener(values)

    @property
    def running(self) -> int:
        """Jobs on this worker, from their start until the operator releases them."""
        with self._lock:
            return len(self._jobs)

    def run(self, payload: str) -> str:
        spec = load_spec(payload)
        from atoll.cluster.wire import execution_id as id_of

        execution_id = id_of(spec.job_id)
        key = task_key(execution_id)
        assert self.worker is not None
        job = _Job(execution_id)
        with self._lock:
            self._jobs[key] = job
        try:
            return self._run(job, spec, payload)
        finally:
            self._unstage(job)
            self._drop(job)

    def _drop(self, job: _Job) -> None:
        key = task_key(job.execution_id)
        with self._lock:
            if self._jobs.get(key) is job:
                del self._jobs[key]

    def _run(self, job: _Job, spec: Any, payload: str) -> str:
        execution_id = job.execution_id
        if self.refusal is not None:
            self._post(execution_id, refused="unavailable", message=self.refusal)
            return "refused"

        def on_log(chunk: bytes) -> None:
            self._post(execution_id, log=chunk)

        try:
            spec = self._prepare(job, spec, payload)
            clear_lost_attempt(spec.outputs_dir, spec.logs_dir)
            execution = self.executor.start(spec, on_log)
        except (InputChanged, InputModified) as e:
            self._post(execution_id, refused="changed", message=str(e))
            return "refused"
        except InputUnavailable as e:  # a URL or S3 source failed, or a held file is gone
            self._post(execution_id, refused="unavailable", message=f"a dataset {e}")
            return "refused"
        except InputUnreadable as e:
            self._post(execution_id, refused="unreadable", message=str(e), target=e.target)
            return "refused"
        except SandboxUnavailable as e:
            self._post(execution_id, refused="unavailable", message=str(e))
            return "refused"
        except Exception:
            log.exception("job %s could not be started", spec.job_id)
            self._post(execution_id, refused="unavailable", message="the job could not start")
            return "refused"
        with job.lock:
            job.execution = execution
        assert self.worker is not None
        self._post(execution_id, started=self.worker.address)
        if job.released.is_set():  # released (cancelled) while it was starting
            execution.cancel()
        try:
            result = execution.wait()
            job.ended = True
            self._post(execution_id, end=dump_result(result), staged=job.staged is not None)
            # the operator reads the outputs between the end and its release of the job
            job.released.wait()
        finally:
            execution.release()
            # gone before the operator hears of the release, and no longer this worker's:
            # a release or stop that comes after the answer finds nothing to free
            self._unstage(job)
            self._drop(job)
            with job.lock:
                job.freed.set()
                answered = job.answered
                for wake in job.on_freed:
                    wake()
            # an operator that released the job straight here hears of it in the answer
            self._post(execution_id, to_operator=not answered, released=True)
        return "done"

    def _unstage(self, job: _Job) -> None:
        """Remove the job's directory of this worker's own, if it ran in one."""
        if job.staged is not None and self.jobs_dir is not None:
            unstage(self.jobs_dir, job.staged.job_id)

    def _prepare(self, job: _Job, spec: ExecutionSpec, payload: str) -> ExecutionSpec:
        """The spec as it runs here: URL and S3 inputs fetched into this worker's cache, and
        the job's files in this worker's own job directory if it has one."""
        extra = load_extra(payload)
        fetches = extra.get("fetch", [])
        if fetches:
            if self.cache is None:
                raise SandboxUnavailable("this worker fetches no URL or S3 sources")
            spec = fetch_on_worker(spec, fetches, SourceRules.load(extra["sources"]), self.cache)
        if self.jobs_dir is not None:
            try:
                spec = stage(spec, extra.get("files", {}), self.jobs_dir)
            except (ShippingError, OSError) as e:
                log.error("job %s could not be staged: %s", spec.job_id, e)
                raise SandboxUnavailable("the job's files could not be staged") from None
            job.staged = spec
        return spec

    def collect(self, execution_id: str) -> bytes:
        """The outputs and logs of an ended job this worker ran in its own job directory."""
        with self._lock:
            job = self._jobs.get(task_key(execution_id))
        if job is None or job.staged is None or not job.ended:
            raise SandboxUnavailable("no ended job of this worker has these outputs")
        return pack_outputs(job.staged.outputs_dir, job.staged.logs_dir)

    async def release_direct(
        self, comm: Comm, execution_id: str = ""
    ) -> dict[str, Any] | ErrorMessage:
        """The operator's release of an ended job of this worker, on the worker's event loop:
        answers ``released`` once its sandbox is freed; ``False`` (the operator then cancels
        the task and waits for the release event) for a job this worker does not run, one not
        ended, or a sandbox not freed in time."""
        if not from_operator(comm):
            log.warning("refused a release from a peer that is not the operator")
            return error_message(PermissionError("only the operator releases a job"))
        with self._lock:
            job = self._jobs.get(task_key(str(execution_id)))
        if job is None or not job.ended:
            return {"released": False}
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()

        def wake() -> None:
            # a loop that gave up waiting may be gone by now
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(woken.set)

        with job.lock:
            job.answered = True
            # freed already (by Dask's cancel, since the job was looked up): nothing to wake
            waiting = not job.freed.is_set()
            if waiting:
                job.on_freed.append(wake)
        job.released.set()
        if waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), RELEASE_WAIT)
        freed = job.freed.is_set()
        if not freed:
            with job.lock:
                # freed since the wait ended, or not: where not, the operator is told so and
                # waits for the release event, which the job's thread then sends
                freed = job.freed.is_set()
                job.answered = freed
        return {"released": freed}

    def stop(self, execution_id: str) -> str:
        with self._lock:
            job = self._jobs.get(task_key(execution_id))
        if job is not None:
            job.stop()
        return "stopped" if job is not None else "unknown"


#: the mark (tmpfs source) of a worker's capped output mounts: ``atoll-dask-<name>-job``
_WORKER_MARK = re.compile(r"atoll-dask-[A-Za-z0-9_.-]+-job")


def clear_lost_attempt(*dirs: Path) -> None:
    """Unmount what an earlier attempt of the job, on a worker that died (its mounts outlive
    it), left on the job's output and log directories, so that this attempt starts empty and
    its results are the only ones."""
    wanted = {os.path.realpath(d) for d in dirs}
    # a tmpfs is a file system of its own: where neither directory is a mount point (every
    # job but a lost one's retry), the host's mount table need not be read
    if not any(os.path.ismount(d) for d in wanted):
        return
    for entry in mounts.read_mounts():
        if (
            entry.mount_point in wanted
            and entry.fstype == "tmpfs"
            and _WORKER_MARK.fullmatch(entry.source)
        ):
            log.warning("clearing the outputs of a lost attempt of a job")
            mounts.unmount(entry.mount_point)


def from_operator(comm: Comm) -> bool:
    """Whether the peer of ``comm`` showed the operator's certificate of the cluster (TLS
    has checked that the cluster's authority signed it)."""
    cert = comm.extra_info.get("peercert") or {}
    subject = {key: value for rdn in cert.get("subject", ()) for key, value in rdn}
    return subject.get("commonName") == common_name("client")


# -- the only tasks a worker runs ---------------------------------------------------------


def _plugin() -> AtollWorkerPlugin:
    plugin = get_worker().plugins.get(PLUGIN_NAME)
    if not isinstance(plugin, AtollWorkerPlugin):
        raise SandboxUnavailable("this Dask worker is not an Atoll worker")
    return plugin


def run_job(payload: str) -> str:
    """Run one job (an ExecutionSpec as :func:`atoll.cluster.wire.dump_spec` writes it) in
    this node's sandbox, until the operator releases it."""
    return _plugin().run(payload)


def stop_job(execution_id: str) -> str:
    """Kill the sandbox of a job this worker runs (its task stays until the release)."""
    return _plugin().stop(execution_id)


def collect_job(execution_id: str) -> bytes:
    """The outputs and logs of an ended job this worker staged in its own job directory
    (:mod:`atoll.cluster.shipping`), as one tar stream."""
    return _plugin().collect(execution_id)


ALLOWED = (run_job, stop_job, collect_job)


def refused() -> None:
    raise NotAnAtollTask("this worker runs only Atoll's jobs")


def allowed(run_spec: object) -> bool:
    """Whether a task is one of Atoll's: one of its functions, called with one string."""
    return (
        isinstance(run_spec, Task)
        and any(run_spec.func is f for f in ALLOWED)
        and len(run_spec.args) == 1
        and isinstance(run_spec.args[0], str)
        and not run_spec.kwargs
    )


class TaskArgumentsHidden(logging.Filter):
    """Keeps a failed task's arguments out of Dask's worker log: a job's payload may hold a
    URL or S3 source's location and keys (:mod:`atoll.cluster.sources`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Compute Failed"):
            args = record.args
            if isinstance(args, tuple) and len(args) >= 3:
                record.args = (args[0], args[1], "an Atoll task (its arguments are not logged)")
                record.args += args[3:]
        return True


def quiet_task_arguments() -> None:
    logger = logging.getLogger("distributed.worker")
    if not any(isinstance(f, TaskArgumentsHidden) for f in logger.filters):
        logger.addFilter(TaskArgumentsHidden())


def guard(worker: Worker) -> None:
    """Make ``worker`` refuse everything but Atoll's tasks (see the module's text)."""

    async def refuse_handler(*args: Any, **kwargs: Any) -> Any:
        return error_message(NotAnAtollTask("this worker runs only Atoll's jobs"))

    for name in REFUSED_HANDLERS:
        worker.handlers[name] = refuse_handler
    execute = worker.execute

    async def guarded_execute(key: Any, *, stimulus_id: str) -> Any:
        ts = worker.state.tasks.get(key)
        if ts is not None and ts.run_spec is not None and not allowed(ts.run_spec):
            log.warning("refused a task that is not Atoll's job function")
            ts.run_spec = Task(key, refused)
        return await execute(key, stimulus_id=stimulus_id)

    worker.execute = guarded_execute  # type: ignore[method-assign]
