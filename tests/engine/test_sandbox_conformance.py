"""The Executor conformance suite on the bubblewrap sandbox."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from atoll.engine.executor import ExecutionLost, Runtime
from atoll.engine.sandbox import SandboxExecutor

from .conftest import PYTHON, SMALL
from .executor_conformance import ExecutorConformance


class TestSandboxConformance(ExecutorConformance):
    @pytest.fixture
    def executor(self, sandbox: SandboxExecutor) -> SandboxExecutor:
        return sandbox

    @pytest.fixture
    def runtime(self) -> Runtime:
        return Runtime(PYTHON)


class TestSandboxImageConformance(ExecutorConformance):
    """The same contract with an image runtime: the job's root is an unpacked image."""

    @pytest.fixture
    def executor(self, sandbox: SandboxExecutor) -> SandboxExecutor:
        return sandbox

    @pytest.fixture
    def runtime(self, image_root: Path) -> Runtime:
        return Runtime(PYTHON, root=image_root)


def test_an_earlier_process_execution_is_lost_and_cancel_removes_its_cgroup(
    sandbox: SandboxExecutor,
) -> None:
    # a cgroup as a crashed engine would have left it: no execution of this process owns it
    job_id = f"left-behind-{os.getpid()}"
    leftover = sandbox._cgroup_system().create(job_id, SMALL)
    execution_id = sandbox.execution_id(job_id)
    try:
        with pytest.raises(ExecutionLost):
            sandbox.attach(execution_id)
        sandbox.cancel(execution_id)
        assert not any(d.exists() for d in leftover.dirs)
    finally:
        leftover.remove()


@pytest.mark.parametrize("execution_id", ["../x", "other-parent/job-x", "atoll/.hidden", ""])
def test_cancel_ignores_ids_that_are_not_this_executors(
    sandbox: SandboxExecutor, execution_id: str
) -> None:
    sandbox.cancel(execution_id)
    with pytest.raises(ExecutionLost):
        sandbox.attach(execution_id)
