"""Draining a real ``atoll worker`` process: it takes no new job, the job it runs finishes
and its results stay whole, then the worker leaves the cluster and its process ends."""

from __future__ import annotations

import dataclasses
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from atoll.cluster.certs import security
from atoll.cluster.executor import DaskExecutor
from atoll.engine.executor import ExitReason, Runtime, SandboxUnavailable
from tests.engine.conftest import PYTHON
from tests.engine.executor_conformance import LIMITS, ExecutorConformance, Log

from .conftest import BIG_JOB_MB, BigWorker, Cluster, atoll

MIB = 1024**2
BIG = dataclasses.replace(LIMITS, memory_bytes=BIG_JOB_MB * MIB)
#: runs until the test writes ``go`` into its outputs, then ends well
WAITS = """
import os, time
print('started', flush=True)
while not os.path.exists('/data/outputs/go'):
    time.sleep(0.05)
open('/data/outputs/result.txt', 'w').write('done')
"""


def _address(executor: DaskExecutor, name: str) -> str | None:
    for address, info in executor.client.scheduler_info(n_workers=-1)["workers"].items():
        if info.get("name") == name:
            return str(address)
    return None


def test_a_drained_worker_takes_no_new_job_and_lets_its_running_job_finish(
    cluster: Cluster, big_worker: BigWorker, dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    conformance = ExecutorConformance()
    address = _address(dask_executor, big_worker.name)
    spec = conformance.spec(tmp_path, Runtime(PYTHON), WAITS, limits=BIG)
    log = Log()
    execution = dask_executor.start(spec, log)
    try:
        assert log.wait_for(b"started")
        assert execution.worker == address
        done = atoll(
            cluster.home,
            *("cluster", "drain", big_worker.name, "--no-wait"),
            *("--certs", str(cluster.certs), "--scheduler", cluster.address),
        )
        assert done.returncode == 0, done.stderr
        assert "1 job(s) running" in done.stdout
        with urllib.request.urlopen(big_worker.metrics_url, timeout=30) as response:
            assert (
                f'atoll_worker_draining{{node="{big_worker.name}"}} 1.0' in response.read().decode()
            )

        # a job only the big worker could take is not placed on it (it has a free slot)
        waiting = DaskExecutor(
            cluster.address, security(cluster.certs, "client"), job_uid=200_000, start_timeout=5
        )
        try:
            big = conformance.spec(tmp_path, Runtime(PYTHON), "print('ran')", limits=BIG)
            with pytest.raises(SandboxUnavailable, match="in time"):
                waiting.start(big, Log())
        finally:
            waiting.close()
        # any other job runs elsewhere
        small = conformance.spec(tmp_path, Runtime(PYTHON), "print('ran')")
        other = dask_executor.start(small, Log())
        try:
            assert other.worker not in (None, address)
            assert other.wait().exit_code == 0
        finally:
            other.release()

        # the running job finishes on the draining worker, whole
        (spec.outputs_dir / "go").write_text("")
        result = execution.wait()
        assert (result.reason, result.exit_code) == (ExitReason.EXITED, 0)
        assert (spec.outputs_dir / "result.txt").read_text() == "done"
        assert big_worker.proc.poll() is None  # it waits for the job's release
    finally:
        execution.release()
    # released: the worker leaves the cluster and its process ends well
    assert big_worker.proc.wait(60) == 0
    deadline = time.monotonic() + 30
    while _address(dask_executor, big_worker.name) is not None:
        assert time.monotonic() < deadline, "the drained worker is still listed"
        time.sleep(0.2)


def test_sigusr1_drains_an_idle_worker(big_worker: BigWorker, dask_executor: DaskExecutor) -> None:
    big_worker.proc.send_signal(signal.SIGUSR1)
    assert big_worker.proc.wait(60) == 0


def test_draining_an_unknown_worker_says_so(cluster: Cluster) -> None:
    done = atoll(
        cluster.home,
        *("cluster", "drain", "no-such-worker"),
        *("--certs", str(cluster.certs), "--scheduler", cluster.address),
    )
    assert done.returncode != 0
    assert "no worker called no-such-worker" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
