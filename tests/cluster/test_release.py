"""The release of an ended job straight on its worker (its ``atoll_release`` handler): the
job's sandbox is gone when the release returns, and freed once although the task's cancel
follows; where the direct call fails, the release waits for the worker's release event as
before; the handler frees nothing of a job its worker does not run or that has not ended,
and answers only the operator's certificate."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from distributed import Security
from distributed.core import rpc

from atoll.cluster.certs import common_name
from atoll.cluster.executor import DaskExecution, DaskExecutor
from atoll.cluster.wire import TOPIC, dump_spec, execution_id
from atoll.cluster.worker import RELEASE_HANDLER, AtollWorkerPlugin
from atoll.engine.executor import ExecutionResult, ExitReason, Runtime
from tests.engine.conftest import PYTHON
from tests.engine.executor_conformance import LIMITS, ExecutorConformance, Log

from .conftest import Cluster, free_port

QUICK = "print('ok', flush=True)"
LONG = """
    import time
    print('started', flush=True)
    time.sleep(120)
"""


class Releases:
    """The release events the operator's client receives, by execution id, seen beside the
    executor's own handler of the topic."""

    def __init__(self, executor: DaskExecutor) -> None:
        self.ids: list[str] = []
        self._executor = executor

    def __call__(self, event: tuple[float, Any]) -> None:
        _, msg = event
        if isinstance(msg, dict) and "released" in msg:
            self.ids.append(str(msg.get("id")))
        self._executor._on_event(event)


@pytest.fixture
def releases(dask_executor: DaskExecutor) -> Iterator[Releases]:
    seen = Releases(dask_executor)
    dask_executor.client.subscribe_topic(TOPIC, seen)
    try:
        yield seen
    finally:
        dask_executor.client.subscribe_topic(TOPIC, dask_executor._on_event)


@pytest.fixture
def answers(dask_executor: DaskExecutor, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each direct release of the executor answered."""
    seen: list[bool] = []
    direct: Callable[[str, str, float], bool] = dask_executor.release_on

    def spy(worker: str, eid: str, timeout: float) -> bool:
        seen.append(direct(worker, eid, timeout))
        return seen[-1]

    monkeypatch.setattr(dask_executor, "release_on", spy)
    return seen


def _ended(executor: DaskExecutor, tmp_path: Path) -> tuple[DaskExecution, Path]:
    spec = ExecutorConformance().spec(tmp_path, Runtime(PYTHON), QUICK, limits=LIMITS)
    execution = executor.start(spec, Log())
    result = execution.wait()
    assert (result.reason, result.exit_code) == (ExitReason.EXITED, 0)
    # the job's capped outputs stay mounted until its release
    assert os.path.ismount(spec.outputs_dir)
    return execution, spec.outputs_dir


def test_an_ended_job_is_freed_by_the_direct_release_once(
    dask_executor: DaskExecutor, tmp_path: Path, releases: Releases, answers: list[bool]
) -> None:
    execution, outputs = _ended(dask_executor, tmp_path)
    worker, eid = execution.worker, execution.execution_id
    assert worker is not None
    execution.release()
    assert answers == [True]
    assert not os.path.ismount(outputs)
    # the task's cancel followed: the job is no longer the worker's, and a stop sent after
    # it (which the worker runs after the cancel, and answers after the events it posted
    # before) finds nothing; the answer told the operator of the release, so no release
    # event follows it (the cancel frees nothing more)
    assert dask_executor.release_on(worker, eid, 30) is False
    dask_executor.stop_on(worker, eid)
    assert releases.ids.count(eid) == 0


def test_a_failing_direct_release_falls_back_to_the_cancel(
    dask_executor: DaskExecutor, tmp_path: Path, releases: Releases, answers: list[bool]
) -> None:
    execution, outputs = _ended(dask_executor, tmp_path)
    worker, eid = execution.worker, execution.execution_id
    assert worker is not None
    # an address nobody answers at: the direct call fails
    execution.worker = f"tls://127.0.0.1:{free_port()}"
    execution.release()
    assert answers == [False]
    # the release waited for the worker to free the sandbox on the task's cancel
    assert eid in releases.ids
    assert not os.path.ismount(outputs)
    dask_executor.stop_on(worker, eid)
    assert releases.ids.count(eid) == 1


def test_a_worker_frees_nothing_of_a_job_it_does_not_run_or_that_has_not_ended(
    dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    spec = ExecutorConformance().spec(tmp_path, Runtime(PYTHON), LONG, limits=LIMITS)
    log = Log()
    execution = dask_executor.start(spec, log)
    try:
        assert log.wait_for(b"started")
        worker, eid = execution.worker, execution.execution_id
        assert worker is not None
        workers = dask_executor.client.scheduler_info(n_workers=-1)["workers"]
        other = next(a for a in workers if a != worker)
        assert dask_executor.release_on(worker, "dask/job-unknown", 30) is False
        assert dask_executor.release_on(other, eid, 30) is False
        assert dask_executor.release_on(worker, eid, 30) is False
        # still running: a stop, not a release, ends it
        assert execution.result is None
        assert os.path.ismount(spec.outputs_dir)
        execution.cancel()
        assert execution.wait().reason is ExitReason.STOPPED
    finally:
        execution.release()
    assert not os.path.ismount(spec.outputs_dir)


def test_only_the_operators_certificate_may_release_a_job(
    cluster: Cluster, dask_executor: DaskExecutor, tmp_path: Path, answers: list[bool]
) -> None:
    execution, outputs = _ended(dask_executor, tmp_path)
    worker, eid = execution.worker, execution.execution_id
    assert worker is not None
    # a worker's certificate is the cluster's too, but not the operator's
    member = Security(
        require_encryption=True,
        tls_ca_file=str(cluster.certs / "ca.pem"),
        tls_client_cert=str(cluster.certs / "worker.pem"),
        tls_client_key=str(cluster.certs / "worker-key.pem"),
    )

    async def call() -> Any:
        async with rpc(worker, connection_args=member.get_connection_args("client")) as peer:
            return await getattr(peer, RELEASE_HANDLER)(execution_id=eid)

    answer = asyncio.run(call())
    assert answer["status"] == "error"
    assert "PermissionError" in answer["exception_text"]
    assert os.path.ismount(outputs)
    execution.release()
    assert answers == [True]
    assert not os.path.ismount(outputs)


class _Ended:
    """A sandbox execution that has ended with exit 0."""

    def wait(self) -> ExecutionResult:
        return ExecutionResult(ExitReason.EXITED, 0, 0.01)

    def cancel(self) -> None:
        pass

    def release(self) -> None:
        pass


class _Sandbox:
    def start(self, spec: object, on_log: object) -> _Ended:
        return _Ended()


class _Worker:
    address = "tls://127.0.0.1:1"

    def __init__(self) -> None:
        #: what the worker sent the operator's topic
        self.events: list[Any] = []

    def log_event(self, topic: str, msg: object) -> None:
        self.events.append(msg)


class _Held(_Ended):
    """An ended execution whose release (the sandbox's clean-up) waits for ``go``."""

    def __init__(self, go: threading.Event) -> None:
        self.go = go

    def release(self) -> None:
        self.go.wait(30)


def _run_ended(
    plugin: AtollWorkerPlugin, tmp_path: Path
) -> tuple[str, threading.Thread, list[dict[str, Any]]]:
    """Run a job on the plugin until it ends: its id, its thread and what the worker's own
    listeners saw of it."""
    seen: list[dict[str, Any]] = []
    ended = threading.Event()

    def listener(values: dict[str, Any]) -> None:
        seen.append(values)
        if "end" in values:
            ended.set()

    plugin.listeners.append(listener)
    spec = ExecutorConformance().spec(tmp_path, Runtime(PYTHON), QUICK, limits=LIMITS)
    runner = threading.Thread(target=plugin.run, args=(dump_spec(spec),))
    runner.start()
    assert ended.wait(30)
    return execution_id(spec.job_id), runner, seen


def _released(events: list[Any]) -> int:
    return sum(1 for e in events if isinstance(e, dict) and e.get("released"))


def test_a_direct_release_sends_no_release_event(tmp_path: Path) -> None:
    """The answer to the operator's direct release tells it the sandbox is freed: the worker
    sends no release event through the scheduler after it (the worker's own metrics still
    count the release)."""
    plugin = AtollWorkerPlugin(_Sandbox())  # type: ignore[arg-type]
    worker = _Worker()
    plugin.worker = worker  # type: ignore[assignment]
    eid, runner, seen = _run_ended(plugin, tmp_path)
    assert asyncio.run(plugin.release_direct(_OperatorComm(), eid)) == {"released": True}  # type: ignore[arg-type]
    runner.join(30)
    assert _released(worker.events) == 0
    assert _released(seen) == 1


def test_a_job_released_by_its_tasks_cancel_sends_its_release_event(tmp_path: Path) -> None:
    plugin = AtollWorkerPlugin(_Sandbox())  # type: ignore[arg-type]
    worker = _Worker()
    plugin.worker = worker  # type: ignore[assignment]
    eid, runner, _ = _run_ended(plugin, tmp_path)
    from atoll.cluster.wire import task_key

    plugin.transition(task_key(eid), "executing", "cancelled")
    runner.join(30)
    assert _released(worker.events) == 1


def test_a_direct_release_that_timed_out_leaves_the_release_event_to_come(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker whose sandbox is not freed within the handler's wait answers "not released",
    and the operator, waiting for the release event instead, gets it once the sandbox is."""
    import atoll.cluster.worker as worker_module

    monkeypatch.setattr(worker_module, "RELEASE_WAIT", 0.2)
    go = threading.Event()

    class Slow(_Sandbox):
        def start(self, spec: object, on_log: object) -> _Ended:
            return _Held(go)

    plugin = AtollWorkerPlugin(Slow())  # type: ignore[arg-type]
    worker = _Worker()
    plugin.worker = worker  # type: ignore[assignment]
    eid, runner, _ = _run_ended(plugin, tmp_path)
    try:
        assert asyncio.run(plugin.release_direct(_OperatorComm(), eid)) == {"released": False}  # type: ignore[arg-type]
    finally:
        go.set()
        runner.join(30)
    assert _released(worker.events) == 1


class _OperatorComm:
    extra_info: ClassVar[dict[str, Any]] = {
        "peercert": {"subject": ((("commonName", common_name("client")),),)}
    }


def test_a_job_the_worker_answered_released_is_no_longer_the_workers(tmp_path: Path) -> None:
    """Once the worker has answered a release, the job is gone from it: a second release (or
    a stop) finds nothing, even while the job's thread has yet to post its release event."""
    plugin = AtollWorkerPlugin(_Sandbox())  # type: ignore[arg-type]
    plugin.worker = _Worker()  # type: ignore[assignment]
    ended, hold = threading.Event(), threading.Event()

    def listener(values: dict[str, Any]) -> None:
        if "end" in values:
            ended.set()
        if values.get("released"):
            hold.wait(30)  # the job's thread stays here, after the sandbox was freed

    plugin.listeners.append(listener)
    spec = ExecutorConformance().spec(tmp_path, Runtime(PYTHON), QUICK, limits=LIMITS)
    runner = threading.Thread(target=plugin.run, args=(dump_spec(spec),))
    runner.start()
    try:
        assert ended.wait(30)
        eid = execution_id(spec.job_id)
        comm: Any = _OperatorComm()
        assert asyncio.run(plugin.release_direct(comm, eid)) == {"released": True}
        assert plugin.running == 0
        assert asyncio.run(plugin.release_direct(comm, eid)) == {"released": False}
        assert plugin.stop(eid) == "unknown"
    finally:
        hold.set()
        runner.join(30)


def test_a_direct_release_of_a_job_freed_meanwhile_answers_without_waiting() -> None:
    """A job freed by Dask's cancel after the release looked it up, before it waited: the
    answer comes at once, not after the release's whole wait (nothing is left to wake it)."""
    from atoll.cluster.wire import task_key
    from atoll.cluster.worker import _Job

    plugin = AtollWorkerPlugin(_Sandbox())  # type: ignore[arg-type]
    plugin.worker = _Worker()  # type: ignore[assignment]
    job = _Job("dask/job-freed", ended=True)
    job.freed.set()
    plugin._jobs[task_key(job.execution_id)] = job

    async def release() -> Any:
        # far below the worker's own wait for the sandbox (RELEASE_WAIT, 30 s)
        return await asyncio.wait_for(plugin.release_direct(_OperatorComm(), job.execution_id), 5)  # type: ignore[arg-type]

    assert asyncio.run(release()) == {"released": True}
