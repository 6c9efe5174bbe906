"""What travels to a worker, what a worker accepts, and what a job asks of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dask._task_spec import Task

from atoll.cluster.executor import DaskExecutor
from atoll.cluster.wire import dump_result, dump_spec, load_result, load_spec
from atoll.cluster.worker import allowed, run_job, stop_job
from atoll.config import load_settings
from atoll.engine.executor import (
    ExecutionResult,
    ExecutionSpec,
    ExitReason,
    Limits,
    Mount,
    Runtime,
)
from atoll.errors import ConfigError
from atoll.node import default_executor

SPEC = ExecutionSpec(
    job_id="job-1",
    runtime=Runtime(Path("/usr/bin/python3"), (Path("/opt/lib"),)),
    args=["/data/transformations/algorithm", "x"],
    mounts=[
        Mount(Path("/srv/d.csv"), "/data/inputs/d/0", content="ab12", fingerprint=(1, 2, 3)),
        Mount(Path("/srv/w"), "/data/w", writable=True, publisher=True),
    ],
    env={"A": "b"},
    outputs_dir=Path("/j/outputs"),
    logs_dir=Path("/j/logs"),
    limits=Limits(memory_bytes=100 * 1024**2 + 1, pids=7),
    egress=("example.org:443",),
    gpus=1,
    devices=("/dev/nvidia0",),
)


def test_a_spec_travels_unchanged() -> None:
    assert load_spec(dump_spec(SPEC)) == SPEC


def test_a_result_travels_unchanged() -> None:
    for result in (
        ExecutionResult(ExitReason.EXITED, 3, 1.5, ""),
        ExecutionResult(ExitReason.STOPPED, None, 0.2, "why"),
    ):
        assert load_result(dump_result(result)) == result


def test_a_job_asks_for_a_slot_its_memory_and_its_gpus() -> None:
    assert DaskExecutor.resources(SPEC) == {"slots": 1, "memory_mb": 101, "gpus": 1}


@pytest.mark.parametrize(
    ("task", "ok"),
    [
        (Task("k", run_job, "{}"), True),
        (Task("k", stop_job, "dask/job-x"), True),
        (Task("k", os.getpid), False),
        (Task("k", os.system, "true"), False),
        # Atoll's function, but with arguments a job never has
        (Task("k", run_job, 1), False),
        (Task("k", run_job, "a", "b"), False),
        (Task("k", run_job, Task("inner", os.getcwd)), False),
        ("not a task", False),
    ],
)
def test_a_worker_accepts_only_atolls_functions(task: object, ok: bool) -> None:
    assert allowed(task) is ok


def test_the_default_stays_the_local_sandbox(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings.cluster_scheduler == ""
    assert default_executor(settings).name == "sandbox"


def test_a_cluster_without_certificates_is_a_clear_error(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, cluster_scheduler="tls://127.0.0.1:1")
    with pytest.raises(ConfigError, match="atoll cluster certs"):
        default_executor(settings)


def test_a_cluster_scheduler_sends_jobs_to_the_cluster(tmp_path: Path) -> None:
    from atoll.cluster.certs import issue

    issue(tmp_path / "cluster-certs")
    settings = load_settings(tmp_path, cluster_scheduler="tls://127.0.0.1:1")
    executor = default_executor(settings)
    assert isinstance(executor, DaskExecutor)
    assert executor.scheduler == "tls://127.0.0.1:1"
