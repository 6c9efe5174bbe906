"""The sandbox escape tests on a worker with a job directory of its own (``--jobs-dir``):
every job is placed on that worker, runs in its directory, and only what comes back through
the cluster is judged; the same hostile jobs are contained there as on the local sandbox."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from atoll.cluster.certs import security
from atoll.cluster.executor import DaskExecutor
from atoll.cluster.placement import data_resource
from atoll.engine.executor import ExecutionSpec
from tests.engine.conftest import JobRun, Jobs, LogBuffer, host_processes_with
from tests.engine.test_sandbox_escape import (  # noqa: F401  (collected here, on Dask)
    listeners,
    test_cancel_stops_a_running_job,
    test_cannot_read_a_dataset_that_is_not_mounted,
    test_daemon_does_not_outlive_the_job,
    test_endless_fork_bomb_is_killed,
    test_endless_loop_hits_the_wall_clock_limit,
    test_filling_outputs_stops_at_the_cap,
    test_filling_the_logs_directory_stops_at_the_cap,
    test_host_files_are_not_visible,
    test_inputs_are_read_only,
    test_links_out_of_the_outputs,
    test_memory_bomb_is_oom_killed,
    test_missing_input_fails_closed,
    test_no_network,
    test_stdout_flood_is_truncated,
)

from .conftest import Cluster, Holder


class OnHolder(DaskExecutor):
    """Sends every job to the holder: each asks for the holder's data root."""

    def __init__(self, cluster: Cluster, holder: Holder) -> None:
        super().__init__(cluster.address, security(cluster.certs, "client"), job_uid=200_000)
        self.holder = holder

    def resources(self, spec: ExecutionSpec) -> dict[str, float]:  # type: ignore[override]
        return {**DaskExecutor.resources(spec), data_resource(self.holder.data_root): 1}


class OwnDirJobs(Jobs):
    """What ``finish`` checks is what came back from the worker's own directory: the
    operator's outputs directory is never a mount, and the worker's is gone once released."""

    holder: Holder

    def finish(self, spec: Any, execution: Any, buf: LogBuffer) -> JobRun:
        try:
            result = execution.wait()
            assert execution.worker == self.holder.address
            run = JobRun(result, buf.data, marker=str(spec.args[1]))
            assert not os.path.ismount(spec.outputs_dir)
            run.read_outputs(spec.outputs_dir)
        finally:
            execution.release()
        assert list(self.holder.jobs_dir.iterdir()) == []
        assert host_processes_with(str(spec.args[1])) == []
        return run


@pytest.fixture(scope="module")
def on_holder(cluster: Cluster, holder: Holder) -> Any:
    executor = OnHolder(cluster, holder)
    executor.check()
    yield executor
    executor.close()


@pytest.fixture
def jobs(on_holder: OnHolder, holder: Holder, tmp_path: Path) -> Jobs:
    j = OwnDirJobs(on_holder, tmp_path)  # type: ignore[arg-type]
    j.holder = holder
    return j
