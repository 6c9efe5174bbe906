"""The node's space: results kept on this host, what the jobs not yet ended may still write
and the cached inputs count against the node-wide cap; past it a new job is refused with 503
(Unavailable) and a message that names no path, and admitted again once space is freed. The
store is real; the executor a stand-in (no job runs: jobs are queued and ended through the
engine's own calls)."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from atoll.engine.executor import ExecutionSpec
from atoll.engine.jobstore import JobStore
from atoll.engine.notify import Notifier
from atoll.engine.runner import Engine, EngineConfig
from atoll.engine.sweeper import ResultSweeper
from atoll.errors import Unavailable
from atoll.models.environment import Environment, Resources
from atoll.models.job import ResultFile, WorkflowInput
from atoll.models.status import JobStatus
from atoll.operator.registry import LocalRegistry
from atoll.storage import LocalResults
from tests.engine.test_runner import Executor
from tests.engine.test_sweeper import workflow
from tests.helpers import input_file, public_dir

MIB = 1024**2
#: a job here may write 4 MiB of outputs and 1 MiB of logs
ENV = Environment(id="short", disk_mb=4, log_mb=1, storage_expiry=60, max_jobs=1)


def _engine(
    db: sa.Engine, tmp_path: Path, cap_mb: int, cached: int = 0, executor: Executor | None = None
) -> Engine:
    config = EngineConfig(
        jobs_dir=tmp_path / "jobs", environments=[ENV], node_disk_bytes=cap_mb * MIB
    )
    return Engine(
        JobStore(db),
        executor or Executor({}),  # type: ignore[arg-type]
        config,
        Notifier(),
        results=LocalResults(tmp_path / "jobs"),
        inputs_usage=lambda: cached,
    )


def _store_result(engine: Engine, job_id: str, size: int) -> None:
    stored = engine.results.put(f"{job_id}/results/0", io.BytesIO(b"x" * size))
    listed = [ResultFile(index=0, filename="o", filesize=size, type="output", sha256=stored.sha256)]
    engine._finish(job_id, JobStatus.FINISHED, results=listed)


class Holding(Executor):
    """Holds each job at its last check before the sandbox until told to go on (then it
    cannot start it: the job ends as the engine's failure)."""

    def __init__(self) -> None:
        super().__init__({})
        self.go = threading.Event()
        self.holding = threading.Event()

    def check_inputs(self, spec: ExecutionSpec) -> None:
        self.holding.set()
        assert self.go.wait(60)


def test_results_and_jobs_not_yet_ended_fill_the_node_and_a_new_job_is_refused(
    db: sa.Engine, tmp_path: Path
) -> None:
    executor = Holding()
    engine = _engine(db, tmp_path, cap_mb=12, executor=executor)
    try:
        _fill_and_refuse(engine, executor, tmp_path)
    finally:
        executor.go.set()
        engine.shutdown()  # its queue's timer would outlive the test's store


def _fill_and_refuse(engine: Engine, executor: Holding, tmp_path: Path) -> None:
    engine.admit(workflow())
    # a job on its way to the sandbox holds what it may write: 5 MiB
    data = public_dir(tmp_path) / "data.csv"
    data.write_text("a,b\n")
    wf = workflow().model_copy(
        update={
            "inputs": [
                WorkflowInput(
                    did="did:atoll:1", ddo={}, locations=[str(data)], files=[input_file(data)]
                )
            ]
        }
    )
    engine.store.create("a", wf)
    engine.submit("a")
    assert executor.holding.wait(60)
    assert engine.disk_in_use() == 5 * MIB
    # another job's 3 MiB of results
    engine.store.create("r", workflow())
    _store_result(engine, "r", 3 * MIB)
    assert engine.disk_in_use() == 8 * MIB
    with pytest.raises(Unavailable) as info:
        engine.admit(workflow())  # 8 + 5 > 12
    assert info.value.status_code == 503
    assert "storage is full" in info.value.message
    assert str(tmp_path) not in info.value.message
    # a job that asks for less room fits: 8 + 1 + 1 <= 12
    engine.admit(workflow().model_copy(update={"resources": Resources(diskMb=1)}))
    # once the held job ends, its hold is given back
    executor.go.set()
    deadline = time.monotonic() + 60
    while not engine.store.info("a").terminal:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert engine.disk_in_use() == 3 * MIB
    engine.admit(workflow())


def test_space_comes_back_when_results_expire_or_are_deleted(db: sa.Engine, tmp_path: Path) -> None:
    engine = _engine(db, tmp_path, cap_mb=10)
    for job_id in ("a", "b"):
        engine.store.create(job_id, workflow())
        _store_result(engine, job_id, 3 * MIB)
    with pytest.raises(Unavailable):
        engine.admit(workflow())  # 6 + 5 > 10
    engine.delete("b")
    engine.admit(workflow())
    engine.store.create("c", workflow())
    _store_result(engine, "c", 3 * MIB)
    with pytest.raises(Unavailable):
        engine.admit(workflow())
    ResultSweeper(engine.store, engine, interval=60).sweep(time.time() + 120)
    assert engine.disk_in_use() == 0
    engine.admit(workflow())


def test_cached_inputs_count(db: sa.Engine, tmp_path: Path) -> None:
    with pytest.raises(Unavailable):
        _engine(db, tmp_path, cap_mb=10, cached=6 * MIB).admit(workflow())
    _engine(db, tmp_path, cap_mb=10, cached=5 * MIB).admit(workflow())


def test_no_cap_admits_everything(db: sa.Engine, tmp_path: Path) -> None:
    engine = _engine(db, tmp_path, cap_mb=0, cached=10**15)
    engine.admit(workflow())


@pytest.mark.anyio
async def test_the_registry_refuses_before_anything_is_recorded(
    db: sa.Engine, tmp_path: Path
) -> None:
    engine = _engine(db, tmp_path, cap_mb=4)
    registry = LocalRegistry(engine.store, engine, engine.notifier)
    wf = workflow().model_copy(update={"jobId": "f" * 32})
    with pytest.raises(Unavailable):
        await registry.register(wf)
    assert engine.store.for_owner(wf.owner) == []
