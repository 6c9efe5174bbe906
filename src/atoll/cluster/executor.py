"""The Dask backend of the Executor interface: the operator submits each job to a Dask
scheduler, which places it on an ``atoll worker`` with a free slot and enough memory (Dask
resources), where the node's own sandbox runs it (:mod:`atoll.cluster.worker`).

A job is one Dask task, :func:`~atoll.cluster.worker.run_job`, that lives from the job's start
until the operator releases it, so its slot and its capped output space are held as long as a
local job's are. Its events come back through the scheduler's ``atoll-jobs`` topic: started
(or refused, with the sandbox's reason), the log as it comes, the end, the release.

Stopping a job sends :func:`~atoll.cluster.worker.stop_job` to the worker that runs it (a
short task, outside the job's slot); releasing it cancels its Dask task, and the worker, on
that cancel, kills whatever still runs and frees the sandbox. An ended job is first released
straight on its worker (its ``atoll_release`` handler, over the client's TLS connections),
which answers once the sandbox is freed; the cancel then follows unwaited for. Where that call
fails, or the worker is not known, the release waits for the worker's release event as for a
job that did not end. A cancel by id that this process did not start forces Dask's cancel of
the task, whoever submitted it.

When the scheduler goes away (killed, restarted), Dask cancels every future of the client:
the jobs the operator has not seen end are sent again, under the same execution id, once a
scheduler answers at the same address (within ``reconnect_timeout``, at most
``MAX_RESUBMITS`` times a job); the workers, which lose their jobs with the scheduler, join
it again (:func:`atoll.cluster.processes.serve_worker`). What the operator's store holds as
running is thus never left waiting on a scheduler that forgot it.

Where the job's files are: dataset files kept on local disk run only on the workers that
hold their data root (:mod:`atoll.cluster.placement`); URL and S3 sources are fetched on the
worker that runs the job (:mod:`atoll.cluster.sources`); the files the engine wrote for the
job travel with it, and a worker with a job directory of its own hands the outputs and logs
back when the job ends (:mod:`atoll.cluster.shipping`). A worker without one runs the job in
the operator's paths (the same host, or a shared filesystem).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from distributed import Client, Future, Security
from distributed.client import ClosedClientError, FutureCancelledError

from atoll.cluster.batching import Submits
from atoll.cluster.placement import data_needs, placeable
from atoll.cluster.reach import CertificateRefused, check_certificates
from atoll.cluster.shipping import ShippingError, empty_outputs, job_files, unpack_outputs
from atoll.cluster.sources import WorkerSources, is_placeholder
from atoll.cluster.wire import TOPIC, dump_spec, execution_id, load_result, task_key
from atoll.cluster.worker import RELEASE_HANDLER, collect_job, run_job, stop_job
from atoll.engine.executor import (
    ExecutionLost,
    ExecutionResult,
    ExecutionSpec,
    ExitReason,
    InputChanged,
    InputUnreadable,
    LogSink,
    SandboxUnavailable,
)
from atoll.engine.sandbox.ids import readable_by

log = logging.getLogger(__name__)

MIB = 1024**2
#: the job's status text when the workers running it died more often than it may be retried
LOST_DETAIL = "Interrupted: the cluster's workers running the job were lost"
#: written into the job's log where an attempt was lost and the job starts again
LOST_NOTE = b"\n[atoll: the worker running the job was lost; the job starts again]\n"
#: the job's status text when its outputs could not be brought back from its worker
UNSHIPPED_DETAIL = "Stopped: the job's outputs could not be brought back from its worker"
#: how long a release waits for the worker to say the job's sandbox is gone
RELEASE_TIMEOUT = 60.0
#: how long the direct release of an ended job waits for its worker's answer before the
#: release waits for the worker's release event instead (a dead worker's address is tried
#: again until then)
DIRECT_RELEASE_TIMEOUT = 5.0
#: the job's status text when the scheduler went away and no scheduler came back in time
SCHEDULER_LOST_DETAIL = "Interrupted: the cluster's scheduler was lost and did not come back"
#: written into the job's log where the scheduler was lost and the job is sent again
SCHEDULER_LOST_NOTE = b"\n[atoll: the cluster's scheduler was lost; the job starts again]\n"
#: times a job is sent again after losing the scheduler, before it fails
MAX_RESUBMITS = 3
#: Dask's reason for the futures it cancels when the client loses its scheduler
CONNECTION_LOST = "scheduler-connection-lost"


def scheduler_lost(future: Future[Any]) -> bool:
    """Whether Dask cancelled ``future`` because its client lost the scheduler (rather than
    a worker's death or a cancel)."""
    if future.status != "cancelled":
        return False
    error = getattr(future._state, "exception", None)
    return isinstance(error, FutureCancelledError) and error.reason == CONNECTION_LOST


def forget(future: Future[Any]) -> None:
    """Cancel a job's task; a client that gave up on a lost scheduler has nothing to cancel
    (the scheduler that knew the task is gone)."""
    with contextlib.suppress(ClosedClientError):
        future.cancel()


def forget_later(future: Future[Any]) -> None:
    """Cancel a job's task without waiting for the client's event loop to send the cancel
    (a job its worker already freed: nothing waits for the cancel)."""
    client = future.client
    loop = client.loop
    if loop is None:
        return

    async def cancel() -> None:
        with contextlib.suppress(ClosedClientError):
            await client._cancel([future])

    loop.add_callback(cancel)


class DaskExecution:
    """A job running on a Dask worker."""

    def __init__(
        self,
        executor: DaskExecutor,
        eid: str,
        future: Future[str],
        on_log: LogSink,
        payload: str = "",
        resources: dict[str, float] | None = None,
    ) -> None:
        self._executor = executor
        self._id = eid
        self.future = future
        #: what it was sent with, to send it again when the scheduler is lost
        self._payload = payload
        self._resources = resources or {}
        #: times it was sent again after losing the scheduler
        self.resubmits = 0
        #: set when the scheduler was lost and did not come back in time
        self._abandoned = False
        self._on_log = on_log
        self.worker: str | None = None
        #: how many times the job was started (more than once when a worker died)
        self.attempts = 1
        self.refusal: SandboxUnavailable | None = None
        self.result: ExecutionResult | None = None
        self.started_at = time.monotonic()
        self._changed = threading.Condition()
        self._released = False
        self._freed = False
        #: a stop was asked for: a job that loses its scheduler is then not sent again
        self._stopping = False
        #: the operator's outputs and logs directories of the job (where a worker with its
        #: own job directory sends them back)
        self.outputs_dirs: tuple[Path, Path] | None = None
        #: the worker ran the job in its own job directory: its outputs are fetched at the end
        self.staged = False
        self._collected = False

    @property
    def execution_id(self) -> str:
        return self._id

    # -- events from the worker (on the client's event loop) -------------------------------

    def event(self, msg: dict[str, Any]) -> None:
        if "log" in msg:
            chunk = msg["log"]
            if isinstance(chunk, bytes):
                self._on_log(chunk)
            return
        with self._changed:
            if "started" in msg:
                if self.worker is not None and self.result is None:
                    # its worker died; Dask placed the task again (bounded: the scheduler's
                    # allowed failures), and the job starts over there
                    self.attempts += 1
                    self._on_log(LOST_NOTE)
                self.worker = str(msg["started"])
            elif "refused" in msg:
                message = str(msg.get("message", "the job could not start"))
                if msg["refused"] == "unreadable":
                    self.refusal = InputUnreadable(str(msg.get("target", "")))
                elif msg["refused"] == "changed":
                    self.refusal = InputChanged(message)
                else:
                    self.refusal = SandboxUnavailable(message)
            elif "end" in msg:
                self.staged = bool(msg.get("staged"))
                self.result = load_result(msg["end"])
            elif "released" in msg:
                self._freed = True
            self._changed.notify_all()

    def _lost(self) -> bool:
        """The task ended without the events of a normal end: its worker died too often, or
        the scheduler went away."""
        return self.future.done() and self.future.status in ("error", "cancelled", "lost")

    def _to_resend(self) -> bool:
        """Whether the job lost its scheduler before its end and may be sent again (called
        with ``_changed`` held)."""
        return (
            self.result is None
            and not self._released
            and not self._abandoned
            and not self._stopping
            and scheduler_lost(self.future)
        )

    def _resend(self) -> None:
        """Send the job again, same key and spec, once a scheduler answers; called without
        ``_changed`` held, as connecting needs the client's event loop, which delivers the
        events under that lock. Past its bounds, the job is abandoned (and ends lost)."""
        with self._changed:
            if self.resubmits >= MAX_RESUBMITS:
                self._abandoned = True
                return
        try:
            future = self._executor.resubmit(self._payload, self._id, self._resources)
        except SandboxUnavailable:
            log.warning("the scheduler did not come back for %s", self._id)
            with self._changed:
                self._abandoned = True
            return
        with self._changed:
            if self._released or self._stopping:
                # stopped while the scheduler was away: the job ends stopped, not sent again
                forget(future)
                return
            self.resubmits += 1
            if self.worker is not None:
                # the attempt died with its worker's link to the scheduler: it starts over
                self.attempts += 1
                self.worker = None
                self._on_log(SCHEDULER_LOST_NOTE)
            self.future = future
            self._changed.notify_all()

    def wait_started(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                while self.worker is None and self.refusal is None:
                    if self._to_resend():
                        break
                    if self._lost():
                        if self._abandoned:
                            raise SandboxUnavailable(
                                "the cluster's scheduler was lost and did not come back"
                            )
                        raise SandboxUnavailable("no worker of the cluster could start the job")
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise SandboxUnavailable("no worker of the cluster started the job in time")
                    self._changed.wait(min(left, 0.5))
                else:
                    if self.refusal is not None:
                        raise self.refusal
                    return
            self._resend()

    # -- the Execution protocol -------------------------------------------------------------

    def wait(self) -> ExecutionResult:
        while True:
            with self._changed:
                while self.result is None:
                    if self._to_resend():
                        break
                    if self._lost():
                        self.result = self._lost_result()
                        break
                    self._changed.wait(0.5)
                result = self.result
            if result is not None:
                return self._collect(result)
            self._resend()

    def _collect(self, result: ExecutionResult) -> ExecutionResult:
        """Bring back the outputs and logs of a job its worker ran in its own directory."""
        if not self.staged or self._collected or self.outputs_dirs is None:
            return result
        if result.reason is ExitReason.LOST:
            return result  # a lost attempt publishes nothing
        worker = self.worker
        try:
            if worker is None:
                raise SandboxUnavailable("the job's worker is not known")
            data = self._executor.collect_from(worker, self._id)
            unpack_outputs(data, *self.outputs_dirs)
        except (ShippingError, OSError, SandboxUnavailable):
            log.warning("the outputs of %s could not be brought back", self._id, exc_info=True)
            result = ExecutionResult(ExitReason.STOPPED, None, result.duration, UNSHIPPED_DETAIL)
            with self._changed:
                self.result = result
        self._collected = True
        return result

    def _lost_result(self) -> ExecutionResult:
        """How a job ended whose task ended without its end: stopped where a stop was asked
        for (here, or by Dask's cancel from another process), lost (the provider's failure)
        where its workers kept dying or its scheduler did not come back."""
        took = time.monotonic() - self.started_at
        if self._stopping or (self.future.status == "cancelled" and not self._abandoned):
            return ExecutionResult(ExitReason.STOPPED, None, took)
        detail = SCHEDULER_LOST_DETAIL if self._abandoned else LOST_DETAIL
        return ExecutionResult(ExitReason.LOST, None, took, detail)

    def cancel(self) -> None:
        self._stopping = True
        worker = self.worker
        if worker is not None and not self._released:
            self._executor.stop_on(worker, self._id)

    def release(self) -> None:
        with self._changed:
            if self._released:
                return
            self._released = True
            # the worker that ended the job (not one whose attempt was lost)
            ended = self.result is not None and self.result.reason is not ExitReason.LOST
            worker = self.worker if ended else None
        # known before the cancel: once cancelled here, the future says so whatever the worker
        lost = self._lost()
        deadline = time.monotonic() + RELEASE_TIMEOUT
        if (
            worker is not None
            and not lost
            and self._executor.release_on(worker, self._id, DIRECT_RELEASE_TIMEOUT)
        ):
            with self._changed:
                self._freed = True
            forget_later(self.future)
        else:
            forget(self.future)
        with self._changed:
            while not self._freed and self.worker is not None and not lost:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("the worker did not confirm the release of %s", self._id)
                    break
                self._changed.wait(min(left, 0.5))
        if self._collected and self.outputs_dirs is not None:
            # what came back lives, like a local job's capped mounts, until the release
            empty_outputs(*self.outputs_dirs)
        self._executor._forget(self._id)


class DaskExecutor:
    """Runs jobs on the ``atoll worker`` nodes of a Dask cluster (see the module's text).

    ``job_uid`` is a uid jobs run as on the workers (the first of their job uid range): a
    publisher's input it could not read is refused before the job is sent."""

    name = "dask"

    def __init__(
        self,
        scheduler: str,
        security: Security | None = None,
        *,
        job_uid: int = 65534,
        start_timeout: float = 600.0,
        connect_timeout: float = 30.0,
        reconnect_timeout: float = 120.0,
        data_roots: Collection[str | Path] = (),
        sources: WorkerSources | None = None,
    ) -> None:
        self.scheduler = scheduler
        #: the provider's data roots: a dataset under one runs where a worker holds it
        self.data_roots = tuple(data_roots)
        #: URL and S3 sources the engine left to the workers to fetch; None: none
        self.sources = sources
        self.security = security
        self.job_uid = job_uid
        self.start_timeout = start_timeout
        self.connect_timeout = connect_timeout
        #: how long a job that lost the scheduler waits for one to answer again
        self.reconnect_timeout = reconnect_timeout
        self._client: Client | None = None
        self._lock = threading.Lock()
        self._live: dict[str, DaskExecution] = {}
        self._live_lock = threading.Lock()
        #: the client's connection to the scheduler that the topic was last asked for on
        self._subscribed: object = None
        self._submits = Submits(run_job)

    # -- the cluster ----------------------------------------------------------------------

    @property
    def client(self) -> Client:
        with self._lock:
            if self._client is not None and self._client.status in ("closing", "closed"):
                # it gave up reconnecting to a scheduler that was gone: a new one connects
                self._client = None
            if self._client is None:
                try:
                    client = Client(
                        self.scheduler,
                        security=self.security,
                        timeout=self.connect_timeout,
                        set_as_default=False,
                    )
                except (OSError, TimeoutError) as e:
                    self._why_unreachable()
                    raise SandboxUnavailable("the cluster's scheduler cannot be reached") from e
                client.subscribe_topic(TOPIC, self._on_event)
                self._client = client
            return self._client

    def _why_unreachable(self) -> None:
        """Tell the node's operator (not the consumer) where the scheduler answers but does
        not take this provider's certificates."""
        if self.security is None:
            return
        try:
            check_certificates(self.scheduler, self.security, "client")
        except CertificateRefused as e:
            log.error("the cluster cannot be joined: %s", e)

    def _on_event(self, event: tuple[float, Any]) -> None:
        _, msg = event
        if not isinstance(msg, dict):
            return
        with self._live_lock:
            execution = self._live.get(str(msg.get("id")))
        if execution is not None:
            execution.event(msg)

    def check(self) -> None:
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        if not any(w.get("resources", {}).get("slots", 0) > 0 for w in workers.values()):
            raise SandboxUnavailable("no Atoll worker is connected to the cluster")

    def check_inputs(self, spec: ExecutionSpec) -> None:
        for m in spec.mounts:
            if is_placeholder(m.source):  # fetched on the worker, readable there
                continue
            if m.publisher and not readable_by(m.source, self.job_uid, self.job_uid):
                raise InputUnreadable(m.target)

    # -- jobs ---------------------------------------------------------------------------------

    @staticmethod
    def resources(spec: ExecutionSpec) -> dict[str, float]:
        """What a job takes of a worker's advertised resources."""
        wanted: dict[str, float] = {
            "slots": 1,
            "memory_mb": math.ceil(spec.limits.memory_bytes / MIB),
        }
        if spec.gpus:
            wanted["gpus"] = spec.gpus
        return wanted

    def start(self, spec: ExecutionSpec, on_log: LogSink) -> DaskExecution:
        self.check_inputs(spec)
        client = self.client
        eid = execution_id(spec.job_id)
        with self._live_lock:
            if eid in self._live:
                raise SandboxUnavailable("the job is already running")
        needs = data_needs(spec, self.data_roots)
        if needs and not placeable(client.scheduler_info(n_workers=-1).get("workers", {}), needs):
            raise SandboxUnavailable("no worker of the cluster holds the job's dataset")
        payload = dump_spec(spec, self.extra(spec))
        resources = {**self.resources(spec), **needs}
        future = self._submit(client, payload, eid, resources)
        execution = DaskExecution(self, eid, future, on_log, payload, resources)
        execution.outputs_dirs = (spec.outputs_dir, spec.logs_dir)
        with self._live_lock:
            self._live[eid] = execution
        try:
            execution.wait_started(self.start_timeout)
        except BaseException:
            execution.release()
            raise
        return execution

    def _submit(
        self, client: Client, payload: str, eid: str, resources: dict[str, float]
    ) -> Future[str]:
        # checked on the event loop, in order before the job's graph goes out there
        assert client.loop is not None
        client.loop.add_callback(self._subscribe, client)
        return self._submits.submit(client, payload, task_key(eid), resources)

    def _subscribe(self, client: Client) -> None:
        """Where the client's connection to the scheduler is new (on the client's event
        loop), make it send as messages come and ask for the topic again: a scheduler that
        restarted while the client reconnected to it by itself knows nothing of the client's
        subscription. Not with every job: one message more per job to the scheduler."""
        comm = client.scheduler_comm
        if client.status == "running" and comm is not None and comm is self._subscribed:
            return
        if comm is not None:
            # Dask holds the client's messages 10 ms apart: a job's task waited there behind
            # the previous job's cancel (messages that come while one is written still go
            # together)
            comm.interval = 0
        client._send_to_scheduler_safe(
            {"op": "subscribe-topic", "topic": TOPIC, "client": client.id}
        )
        if client.status == "running":
            self._subscribed = comm

    def resubmit(self, payload: str, eid: str, resources: dict[str, float]) -> Future[str]:
        """Send a job again once a scheduler answers at the cluster's address;
        SandboxUnavailable when none does within ``reconnect_timeout``."""
        deadline = time.monotonic() + self.reconnect_timeout
        while True:
            try:
                client = self.client
                if client.status == "running":
                    log.warning("the scheduler was lost: %s is sent again", eid)
                    return self._submit(client, payload, eid, resources)
            except SandboxUnavailable:
                pass
            if time.monotonic() >= deadline:
                raise SandboxUnavailable("the cluster's scheduler was lost and did not come back")
            time.sleep(0.2)

    def extra(self, spec: ExecutionSpec) -> dict[str, Any]:
        """What a worker needs beyond the spec: the job's files (for a worker with its own
        job directory) and the URL and S3 sources it fetches, with the operator's rules."""
        extra: dict[str, Any] = {"files": job_files(spec)}
        fetches = self.sources.fetches(spec) if self.sources is not None else []
        if fetches:
            assert self.sources is not None
            extra["fetch"] = fetches
            extra["sources"] = self.sources.rules.dump()
        return extra

    def collect_from(self, worker: str, eid: str) -> bytes:
        """The outputs and logs of the ended job ``eid`` from the worker that staged it."""
        future = self.client.submit(
            collect_job, eid, workers=[worker], allow_other_workers=False, pure=False, priority=100
        )
        try:
            data = future.result(timeout=RELEASE_TIMEOUT)
        except Exception as e:
            raise SandboxUnavailable("the worker did not hand back the job's outputs") from e
        finally:
            future.release()
        if not isinstance(data, bytes):
            raise SandboxUnavailable("the worker did not hand back the job's outputs")
        return data

    def release_on(self, worker: str, eid: str, timeout: float) -> bool:
        """Release the ended job ``eid`` straight on ``worker``; True once the worker freed
        its sandbox, False where it did not say so (unreachable, refused, not its job).
        Only over a client connected to the scheduler: one that lost it has lost the worker's
        jobs with it, and a release does not connect a new one."""
        client = self._client  # not under the lock, which a client connecting holds
        if client is None or client.status != "running":
            return False

        async def call() -> Any:
            handler = getattr(client.rpc(worker), RELEASE_HANDLER)
            return await asyncio.wait_for(handler(execution_id=eid), timeout)

        try:
            answer = client.sync(call)
        except Exception:
            log.warning("the direct release of %s failed; it is cancelled instead", eid)
            log.debug("the direct release of %s failed", eid, exc_info=True)
            return False
        return isinstance(answer, dict) and answer.get("released") is True

    def stop_on(self, worker: str, eid: str) -> None:
        """Ask ``worker`` to kill the sandbox of ``eid``; waits for the answer."""
        future = self.client.submit(
            stop_job,
            eid,
            workers=[worker],
            allow_other_workers=False,
            pure=False,
            priority=100,
        )
        try:
            future.result(timeout=30)
        except Exception:
            log.warning("the worker did not confirm the stop of %s", eid, exc_info=True)
        finally:
            future.release()

    def attach(self, execution_id: str) -> DaskExecution:
        with self._live_lock:
            execution = self._live.get(execution_id)
        if execution is None:
            raise ExecutionLost("the execution is not running on this cluster")
        return execution

    def cancel(self, execution_id: str) -> None:
        with self._live_lock:
            execution = self._live.get(execution_id)
        if execution is not None:
            execution.cancel()
            return
        if not execution_id.startswith("dask/") or self._client is None:
            return
        # a job another process submitted: Dask's cancel of its task, for every client; the
        # worker then kills its sandbox and frees it
        client = self.client
        assert client.loop is not None
        message = {"op": "cancel-keys", "keys": [task_key(execution_id)], "force": True}
        client.loop.add_callback(
            client._send_to_scheduler, {**message, "reason": None, "msg": None}
        )

    def _forget(self, eid: str) -> None:
        with self._live_lock:
            self._live.pop(eid, None)

    def recover(self, keep: Collection[str] = ()) -> None:
        """Workers clean up after themselves (``atoll worker`` recovers its sandbox when it
        starts, and a task whose client went away is cancelled by Dask): nothing to do here."""

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
