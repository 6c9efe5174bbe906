"""One process per sandbox name on a host: a second process given the name of one that runs
jobs (a node directory served twice, two workers of one name) fails closed instead of
clearing away the first's running jobs as leftovers; once the first dies, however it dies,
the name is free and its leftovers are cleared."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.engine.executor import SandboxUnavailable
from atoll.engine.sandbox import SandboxExecutor
from atoll.engine.sandbox.claim import TAKEN

from .conftest import host_processes_with, sandbox_unavailable_reason, skip_or_fail

#: another process: an executor of the given name that runs one job, then waits
HOLDER = """
    import sys, threading
    from pathlib import Path
    from atoll.engine.executor import ExecutionSpec, Limits, Runtime
    from atoll.engine.sandbox import SandboxExecutor

    name, marker, root = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    executor = SandboxExecutor(cgroup_name=name)
    executor.check()
    up = threading.Event()
    spec = ExecutionSpec(
        job_id="held",
        runtime=Runtime(Path("/bin/sh")),
        # the shell stays (sleep is not its last command, so it is not exec'd): the marker
        # names the job's processes for as long as it runs
        args=["-c", f"echo up; sleep 120; echo done # {marker}"],
        mounts=[],
        env={},
        outputs_dir=root / "outputs",
        logs_dir=root / "logs",
        limits=Limits(memory_bytes=64 * 1024**2, pids=8, wall_seconds=300),
    )
    execution = executor.start(spec, lambda chunk: up.set() if b"up" in chunk else None)
    up.wait(60)
    print("ready", flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def holding(name: str, root: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Another process running one job under the sandbox name ``name`` (in ``root``): it
    and the job's marker. Afterwards it is killed and what it left is cleared."""
    marker = uuid.uuid4().hex
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), name, marker, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc, marker
    finally:
        proc.kill()
        proc.wait()
        # whatever the test left: the name's leftovers, now that nobody holds it
        last = SandboxExecutor(cgroup_name=name)
        last.recover()
        last.close()


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    reason = sandbox_unavailable_reason()
    if reason:
        skip_or_fail(reason)
    name = f"atoll-test-claim-{uuid.uuid4().hex[:12]}"
    with holding(name, tmp_path) as (proc, marker):
        yield proc, name, marker


def test_a_second_process_of_one_name_neither_recovers_nor_checks(
    holder: tuple[subprocess.Popen[str], str, str],
) -> None:
    proc, name, marker = holder
    job = host_processes_with(marker)
    assert job
    second = SandboxExecutor(cgroup_name=name)
    with pytest.raises(SandboxUnavailable) as refused:
        second.recover()
    assert str(refused.value) == TAKEN
    with pytest.raises(SandboxUnavailable, match="another process on this host"):
        second.check()
    # the first process's job was never touched
    left = host_processes_with(marker)
    assert left and set(left) <= set(job)
    assert proc.poll() is None


def test_the_name_is_free_once_its_process_dies_and_its_leftovers_go(
    holder: tuple[subprocess.Popen[str], str, str],
) -> None:
    proc, name, marker = holder
    assert host_processes_with(marker)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    after = SandboxExecutor(cgroup_name=name)
    after.recover()
    assert host_processes_with(marker) == []
    after.close()


def test_executors_of_one_name_in_one_process_share_its_claim() -> None:
    reason = sandbox_unavailable_reason()
    if reason:
        skip_or_fail(reason)
    name = f"atoll-test-claim-{uuid.uuid4().hex[:12]}"
    first = SandboxExecutor(cgroup_name=name)
    first.check()
    # one built after a simulated crash of the other, in the same process
    second = SandboxExecutor(cgroup_name=name)
    second.recover()
    second.close()
    first.close()
