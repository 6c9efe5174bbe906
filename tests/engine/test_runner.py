"""The engine's recovery after a restart: a job whose execution the executor still runs is
attached to by its recorded execution id and published; one that is lost is queued again, and
the executor cleans up everything but the executions attached to.

The store and executor are stand-ins: what is tested is the engine's side of the contract.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from atoll.engine.executor import (
    ExecutionLost,
    ExecutionResult,
    ExecutionSpec,
    ExitReason,
    LogSink,
    Mount,
)
from atoll.engine.notify import Notifier
from atoll.engine.runner import Engine, EngineConfig
from atoll.models.job import ResultFile, Workflow, WorkflowAlgorithm, WorkflowInput
from atoll.models.status import JobStatus

JOB = "0" * 31 + "1"


@dataclass
class Record:
    job_id: str
    status: JobStatus
    workflow: Workflow
    stopreq: int = 0
    attempts: int = 1
    created: float = 0.0


@dataclass
class Store:
    records: dict[str, Record]
    moves: list[tuple[JobStatus, str]] = field(default_factory=list)
    results: list[ResultFile] | None = None
    ended: threading.Event = field(default_factory=threading.Event)

    def in_flight(self) -> list[Record]:
        return [r for r in self.records.values() if not r.status.terminal]

    def record(self, job_id: str) -> Record:
        return self.records[job_id]

    def adopt_old_results(self) -> int:
        return 0

    def advance(self, job_id: str, status: JobStatus, text: str = "", results: Any = None) -> bool:
        self.records[job_id].status = status
        self.moves.append((status, text))
        if status.terminal:
            self.results = results
            self.ended.set()
        return True


class Survivor:
    """An execution that outlived the engine that started it."""

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id
        self.released = False

    def wait(self) -> ExecutionResult:
        return ExecutionResult(ExitReason.EXITED, 0, 1.0)

    def cancel(self) -> None:
        pass

    def release(self) -> None:
        self.released = True


@dataclass
class Executor:
    running: dict[str, Survivor]
    name: str = "stand-in"
    kept: list[str] | None = None

    def check(self) -> None:
        pass

    def check_inputs(self, spec: ExecutionSpec) -> None:
        pass

    def start(self, spec: ExecutionSpec, on_log: LogSink) -> Survivor:
        raise AssertionError("recovery starts no job")

    def attach(self, execution_id: str) -> Survivor:
        if execution_id not in self.running:
            raise ExecutionLost("not running")
        return self.running[execution_id]

    def cancel(self, execution_id: str) -> None:
        pass

    def recover(self, keep: Collection[str] = ()) -> None:
        self.kept = list(keep)

    def close(self) -> None:
        pass


def _engine(tmp_path: Path, executor: Executor) -> tuple[Engine, Store]:
    workflow = Workflow(
        owner="0x" + "ab" * 20,
        inputs=[WorkflowInput(did="did:atoll:1", ddo={}, locations=[])],
        algorithm=WorkflowAlgorithm(rawcode="pass"),
    )
    store = Store({JOB: Record(JOB, JobStatus.RUNNING, workflow)})
    config = EngineConfig(jobs_dir=tmp_path / "jobs", environments=[])
    engine = Engine(store, executor, config, Notifier())  # type: ignore[arg-type]
    workspace = engine.workspace(JOB)
    workspace.root.mkdir(parents=True)
    workspace.record_execution("exec-1", [Mount(tmp_path / "in", "/data/inputs/x/0")])
    workspace.algorithm_log.write_bytes(b"ran before the restart\n")
    return engine, store


def test_a_job_still_running_is_attached_and_published(tmp_path: Path) -> None:
    survivor = Survivor("exec-1")
    executor = Executor({"exec-1": survivor})
    engine, store = _engine(tmp_path, executor)
    engine.recover()
    assert executor.kept == ["exec-1"]
    assert store.ended.wait(30)
    assert store.moves[-1][0] is JobStatus.FINISHED
    assert JobStatus.QUEUED not in [status for status, _ in store.moves]
    assert store.results is not None
    assert [r.filename for r in store.results] == ["algorithm.log"]
    with engine.open_result(JOB, 0) as published:
        assert published.read() == b"ran before the restart\n"
    assert survivor.released


def test_a_lost_job_is_queued_again_and_nothing_is_kept(tmp_path: Path) -> None:
    executor = Executor({})
    engine, store = _engine(tmp_path, executor)
    engine.recover()
    assert executor.kept == []
    assert store.moves[0] == (JobStatus.QUEUED, "Queued again after a provider restart")


@pytest.mark.parametrize("noted", ["", "{", '{"execution": 1}', '{"inputs": []}'])
def test_an_unreadable_record_means_no_execution(tmp_path: Path, noted: str) -> None:
    engine, _ = _engine(tmp_path, Executor({}))
    engine.workspace(JOB).execution_record.write_text(noted)
    assert engine.workspace(JOB).recorded_execution() is None


def test_the_published_results_are_told_before_the_sandbox_is_released(tmp_path: Path) -> None:
    """What reads a job's results next (the provider's checks) hears of them as soon as they
    are kept: before the job's sandbox is released and its end recorded."""
    survivor = Survivor("exec-1")
    engine, store = _engine(tmp_path, Executor({"exec-1": survivor}))
    told: list[tuple[str, list[str], list[ResultFile], bool, bool]] = []

    def on_published(job_id: str, dids: list[str], results: list[ResultFile]) -> None:
        told.append((job_id, dids, results, survivor.released, store.ended.is_set()))

    engine.on_published = on_published
    engine.recover()
    assert store.ended.wait(30)
    assert store.results is not None
    assert [r.filename for r in store.results] == ["algorithm.log"]
    # the files the job's end records, told while its sandbox was still held
    assert told == [(JOB, ["did:atoll:1"], store.results, False, False)]


def test_the_log_is_told_once_the_sandbox_exited_before_the_results_are_kept(
    tmp_path: Path,
) -> None:
    """What reads a job's log next (the provider's checks) hears of it as soon as the job's
    sandbox has exited, whole, before the job's outputs are measured and kept."""
    survivor = Survivor("exec-1")
    engine, store = _engine(tmp_path, Executor({"exec-1": survivor}))
    log_file = engine.workspace(JOB).algorithm_log
    told: list[tuple[str, list[str], Path, bool, bool]] = []
    order: list[str] = []

    def on_exited(job_id: str, dids: list[str], path: Path) -> None:
        order.append("exited")
        told.append((job_id, dids, path, survivor.released, store.ended.is_set()))

    engine.on_exited = on_exited
    engine.on_published = lambda *_: order.append("kept")
    engine.recover()
    assert store.ended.wait(30)
    assert told == [(JOB, ["did:atoll:1"], log_file, False, False)]
    assert order == ["exited", "kept"]


def test_a_failing_listener_does_not_stop_the_job_s_end(tmp_path: Path) -> None:
    survivor = Survivor("exec-1")
    engine, store = _engine(tmp_path, Executor({"exec-1": survivor}))

    def on_published(job_id: str, dids: list[str], results: list[ResultFile]) -> None:
        raise RuntimeError("the listener failed")

    engine.on_published = on_published
    engine.on_exited = lambda *_: on_published("", [], [])
    engine.recover()
    assert store.ended.wait(30)
    assert store.moves[-1][0] is JobStatus.FINISHED
    assert survivor.released
