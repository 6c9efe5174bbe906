"""Fixtures for the sandbox tests: a real SandboxExecutor (no mocks) and a helper that runs a
Python snippet as a job and collects what came out of it.

The sandbox needs root and bubblewrap. Without them the tests skip, unless
``ATOLL_REQUIRE_SANDBOX=1`` (set in CI), where they fail instead.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import textwrap
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from atoll.engine.executor import (
    ExecutionResult,
    ExecutionSpec,
    ExitReason,
    Limits,
    Mount,
    Runtime,
    SandboxUnavailable,
)
from atoll.engine.sandbox import SandboxExecution, SandboxExecutor
from atoll.engine.sandbox.cgroups import job_cgroup_name

# the real registry and the Debian test images, for the jobs that run in images
from tests.images.conftest import debian_python_image, registry  # noqa: F401

REQUIRE_SANDBOX = os.environ.get("ATOLL_REQUIRE_SANDBOX") == "1"
PYTHON = Path("/usr/bin/python3")
ALGORITHM = "/data/transformations/algorithm"

#: small limits so that every abuse test ends in a second or two
SMALL = Limits(
    memory_bytes=64 * 1024**2,
    pids=32,
    cpus=1.0,
    cpu_seconds=30,
    wall_seconds=20.0,
    file_size_bytes=8 * 1024**2,
    output_bytes=1024**2,
    log_bytes=256 * 1024,
)

#: prepended to every job: ``report(**values)`` prints one machine-readable line, and
#: ``attempt(fn, *args)`` returns "ok" or the errno name (or exception name) of the failure.
PRELUDE = textwrap.dedent(
    """
    import errno, json, os, sys
    def report(**values):
        sys.stdout.flush()
        print("RESULT " + json.dumps(values), flush=True)
    def attempt(fn, *args, **kwargs):
        try:
            fn(*args, **kwargs)
        except OSError as e:
            return errno.errorcode.get(e.errno or 0, type(e).__name__)
        except Exception as e:
            return type(e).__name__
        return "ok"
    """
)


def sandbox_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "the sandbox needs root (cgroups and tmpfs mounts)"
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed"
    return None


def skip_or_fail(reason: str) -> None:
    if REQUIRE_SANDBOX:
        pytest.fail(f"ATOLL_REQUIRE_SANDBOX=1 but the sandbox cannot run: {reason}")
    pytest.skip(f"sandbox unavailable: {reason}")


def host_processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains ``marker``."""
    found = []
    needle = marker.encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                if needle in f.read():
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def host_status(pid: int) -> dict[str, str]:
    """The fields of a host process's /proc status, as read from the host."""
    text = Path(f"/proc/{pid}/status").read_text()
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def marked_mount_points(marker: str) -> list[str]:
    from atoll.engine.sandbox.mounts import marked_mounts

    return [m.mount_point for m in marked_mounts(marker)]


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxExecutor]:
    reason = sandbox_unavailable_reason()
    if reason:
        skip_or_fail(reason)
    executor = SandboxExecutor(cgroup_name=f"atoll-test-{os.getpid()}", tmp_bytes=4 * 1024**2)
    try:
        executor.check()
    except SandboxUnavailable as e:
        skip_or_fail(str(e))
    yield executor
    executor.recover()
    executor.close()
    for parent in executor._cgroup_system().parent_dirs().values():
        assert not parent.is_dir()
    assert not (executor.stage_root / executor.cgroup_name).exists()


@dataclass
class JobRun:
    result: ExecutionResult
    log: bytes
    #: regular files in the outputs while they were still mounted: name -> content
    outputs: dict[str, bytes] = field(default_factory=dict)
    #: symlinks in the outputs: name -> link target
    links: dict[str, str] = field(default_factory=dict)
    marker: str = ""

    def read_outputs(self, outputs_dir: Path) -> None:
        """Take the job's regular files and symlinks from ``outputs_dir``, as they are now."""
        for entry in os.scandir(outputs_dir):
            if entry.is_symlink():
                self.links[entry.name] = os.readlink(entry.path)
            elif entry.is_file():
                self.outputs[entry.name] = Path(entry.path).read_bytes()

    @property
    def report(self) -> dict[str, Any]:
        for line in reversed(self.log.decode(errors="replace").splitlines()):
            if line.startswith("RESULT "):
                value: dict[str, Any] = json.loads(line[len("RESULT ") :])
                return value
        raise AssertionError(f"the job reported nothing; log: {self.log[-2000:]!r}")


class LogBuffer:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.lock = threading.Lock()
        self.seen = threading.Event()
        self.watch: bytes | None = None

    def __call__(self, chunk: bytes) -> None:
        with self.lock:
            self.chunks.append(chunk)
            if self.watch is not None and self.watch in b"".join(self.chunks):
                self.seen.set()

    @property
    def data(self) -> bytes:
        with self.lock:
            return b"".join(self.chunks)


class Jobs:
    """Runs snippets of Python as sandboxed jobs under ``root``; with ``image``, in that
    unpacked image (its Python) instead of the host's."""

    _ids = itertools.count()

    def __init__(self, executor: SandboxExecutor, root: Path, image: Path | None = None) -> None:
        self.executor = executor
        self.root = root
        self.image = image

    def runtime(self, interpreter: Path = PYTHON) -> Runtime:
        """A runtime of this kind (host or image) with another interpreter."""
        return Runtime(interpreter, root=self.image)

    def spec(
        self,
        code: str,
        *,
        limits: Limits = SMALL,
        mounts: Sequence[Mount] = (),
        env: Mapping[str, str] | None = None,
        runtime: Runtime | None = None,
        marker: str | None = None,
        devices: Sequence[str] = (),
    ) -> ExecutionSpec:
        n = next(self._ids)
        job_dir = self.root / f"job{n}"
        job_dir.mkdir()
        algorithm = job_dir / "algorithm.py"
        algorithm.write_text(PRELUDE + textwrap.dedent(code))
        marker = marker or f"atoll-marker-{uuid.uuid4().hex}"
        return ExecutionSpec(
            job_id=f"test-{os.getpid()}-{n}",
            runtime=runtime or self.runtime(),
            args=[ALGORITHM, marker],
            mounts=[Mount(algorithm, ALGORITHM), *mounts],
            env=dict(env or {}),
            outputs_dir=job_dir / "outputs",
            logs_dir=job_dir / "logs",
            limits=limits,
            devices=tuple(devices),
        )

    def start(self, spec: ExecutionSpec) -> tuple[SandboxExecution, LogBuffer]:
        buffer = LogBuffer()
        return self.executor.start(spec, buffer), buffer

    def finish(self, spec: ExecutionSpec, execution: SandboxExecution, buf: LogBuffer) -> JobRun:
        try:
            result = execution.wait()
            run = JobRun(result, buf.data, marker=str(spec.args[1]))
            # The engine copies outputs after wait() and before release(): they must still be
            # there, on the capped mount.
            assert os.path.ismount(spec.outputs_dir)
            run.read_outputs(spec.outputs_dir)
        finally:
            execution.release()
        assert not os.path.ismount(spec.outputs_dir)
        assert not os.path.ismount(spec.logs_dir)
        stages = self.executor.stage_root / self.executor.cgroup_name
        assert not (stages / job_cgroup_name(spec.job_id)).exists()
        # Whatever the job did, nothing of it runs once wait() has returned.
        assert host_processes_with(str(spec.args[1])) == []
        return run

    def run(self, code: str, **kwargs: Any) -> JobRun:
        spec = self.spec(code, **kwargs)
        execution, buf = self.start(spec)
        return self.finish(spec, execution, buf)

    def assert_healthy(self) -> None:
        """A plain job still runs normally: the host survived whatever came before."""
        run = self.run("print('still fine')")
        assert run.result.reason is ExitReason.EXITED, run.result
        assert run.result.exit_code == 0
        assert b"still fine" in run.log


@pytest.fixture
def jobs(sandbox: SandboxExecutor, tmp_path: Path) -> Jobs:
    return Jobs(sandbox, tmp_path)


@pytest.fixture(scope="session")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Debian test image with Python's standard library, unpacked and hardened as the
    image cache does it: the root of an image runtime."""
    from atoll.images.unpack import harden
    from tests.images.conftest import PYTHON_RECIPE, build_debian_layout, need

    need("umoci", "mmdebstrap", "busybox")
    layout = build_debian_layout(PYTHON_RECIPE, "debian-python3-full")
    root = tmp_path_factory.mktemp("image") / "rootfs"
    image = f"{layout}:latest"
    subprocess.run(
        ["umoci", "raw", "unpack", "--rootless", "--image", image, str(root)],
        check=True,
        capture_output=True,
    )
    harden(root, 1 << 34)
    return root


@pytest.fixture(params=["host", "image"])
def any_jobs(request: pytest.FixtureRequest, sandbox: SandboxExecutor, tmp_path: Path) -> Jobs:
    """Jobs with the host's runtime, then with an image runtime."""
    if request.param == "image":
        return Jobs(sandbox, tmp_path, request.getfixturevalue("image_root"))
    return Jobs(sandbox, tmp_path)
