"""A worker killed (``kill -9``) in the middle of a job: the scheduler places the job again
on another worker, under the same execution id, and only that attempt's results remain."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from atoll.cluster.executor import LOST_DETAIL, LOST_NOTE, DaskExecutor
from atoll.engine.executor import ExitReason, Runtime
from tests.engine.conftest import PYTHON
from tests.engine.executor_conformance import LIMITS, ExecutorConformance, Log

from .conftest import Cluster

CODE = """
    import os, time
    # what a first attempt leaves behind must not reach the results of the next
    open('/data/outputs/attempt-' + str(os.getpid()) + '-' + str(time.time()), 'w').write('x')
    print('started', flush=True)
    time.sleep(3)
    open('/data/outputs/result.txt', 'w').write('done')
"""


def _worker_name(executor: DaskExecutor, address: str) -> str:
    info = executor.client.scheduler_info(n_workers=-1)["workers"][address]
    return str(info["name"])


def _replace(cluster: Cluster, executor: DaskExecutor, *names: str) -> None:
    """Start the killed workers again (each clears what its earlier run left) so the session
    keeps its three workers."""
    for name in names:
        cluster.workers[name] = cluster.start_worker(name)
    deadline = time.monotonic() + 120
    while len(executor.client.scheduler_info(n_workers=-1)["workers"]) < len(cluster.workers):
        assert time.monotonic() < deadline, "the replacement worker did not join"
        time.sleep(0.2)


def test_a_job_whose_worker_is_killed_runs_again_on_another(
    cluster: Cluster, dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    spec = ExecutorConformance().spec(tmp_path, Runtime(PYTHON), CODE, limits=LIMITS)
    log = Log()
    execution = dask_executor.start(spec, log)
    try:
        assert log.wait_for(b"started")
        first = execution.worker
        assert first is not None
        name = _worker_name(dask_executor, first)
        victim = cluster.workers[name]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        result = execution.wait()
        assert (result.reason, result.exit_code) == (ExitReason.EXITED, 0)
        assert execution.execution_id == f"dask/job-{spec.job_id}"
        assert execution.worker not in (None, first)
        assert execution.attempts == 2
        assert LOST_NOTE in log.data
        # one result set: the second attempt's, nothing of the first
        outputs = sorted(p.name for p in spec.outputs_dir.iterdir())
        assert len([n for n in outputs if n.startswith("attempt-")]) == 1
        assert (spec.outputs_dir / "result.txt").read_text() == "done"
        execution.release()
        # nothing of the lost attempt is left mounted over the job's directories
        assert not os.path.ismount(spec.outputs_dir)
        assert not os.path.ismount(spec.logs_dir)
    finally:
        execution.release()
        _replace(cluster, dask_executor, name)


def test_a_job_whose_workers_keep_dying_fails_with_a_clear_status(
    cluster: Cluster, dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    # the scheduler allows two attempts (``atoll cluster scheduler --attempts``, default 2)
    spec = ExecutorConformance().spec(tmp_path, Runtime(PYTHON), CODE, limits=LIMITS)
    log = Log()
    execution = dask_executor.start(spec, log)
    killed: list[str] = []
    try:
        for attempt in (1, 2):
            deadline = time.monotonic() + 60
            while log.data.count(b"started") < attempt:
                assert time.monotonic() < deadline, "the job did not start again"
                time.sleep(0.05)
            assert execution.worker is not None
            name = _worker_name(dask_executor, execution.worker)
            os.kill(cluster.workers[name].pid, signal.SIGKILL)
            cluster.workers[name].wait()
            killed.append(name)
        result = execution.wait()
        # the provider's failure, not the job's: the runner makes it an interrupted job
        assert result.reason is ExitReason.LOST
        assert result.exit_code is None
        assert result.detail == LOST_DETAIL
        assert not (spec.outputs_dir / "result.txt").exists()
    finally:
        execution.release()
        _replace(cluster, dask_executor, *killed)
