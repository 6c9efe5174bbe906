"""The sandbox escape tests on a Dask worker: the same hostile jobs, sent through the
scheduler to an ``atoll worker``, are contained there as they are on the local sandbox."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from atoll.cluster.executor import DaskExecutor
from tests.engine.conftest import JobRun, Jobs, LogBuffer, host_processes_with
from tests.engine.test_sandbox_escape import (  # noqa: F401  (collected here, on Dask)
    listeners,
    test_cancel_stops_a_running_job,
    test_cannot_read_a_dataset_that_is_not_mounted,
    test_daemon_does_not_outlive_the_job,
    test_endless_fork_bomb_is_killed,
    test_endless_loop_hits_the_cpu_time_limit,
    test_endless_loop_hits_the_wall_clock_limit,
    test_filling_outputs_stops_at_the_cap,
    test_filling_outputs_with_empty_files_stops_at_the_inode_cap,
    test_filling_the_logs_directory_stops_at_the_cap,
    test_fork_bomb_is_capped_by_pids_max,
    test_global_sysctls_are_read_only,
    test_host_files_are_not_visible,
    test_inputs_are_read_only,
    test_links_out_of_the_outputs,
    test_memory_bomb_is_oom_killed,
    test_missing_input_fails_closed,
    test_missing_interpreter_fails_closed,
    test_no_network,
    test_stdout_flood_is_truncated,
)


class DaskJobs(Jobs):
    """Jobs run through the Dask executor; what ``finish`` checks is what the engine sees
    (outputs mounted until the release, nothing of the job running after wait())."""

    def finish(self, spec: Any, execution: Any, buf: LogBuffer) -> JobRun:
        try:
            result = execution.wait()
            run = JobRun(result, buf.data, marker=str(spec.args[1]))
            assert os.path.ismount(spec.outputs_dir)
            run.read_outputs(spec.outputs_dir)
        finally:
            execution.release()
        assert not os.path.ismount(spec.outputs_dir)
        assert not os.path.ismount(spec.logs_dir)
        assert host_processes_with(str(spec.args[1])) == []
        return run


@pytest.fixture
def jobs(dask_executor: DaskExecutor, tmp_path: Path) -> Jobs:
    return DaskJobs(dask_executor, tmp_path)  # type: ignore[arg-type]
