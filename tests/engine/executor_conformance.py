"""What every Executor backend must do, as a test class a backend's tests subclass.

A subclass provides two fixtures: ``executor`` (a checked Executor, shared by the tests) and
``runtime`` (a Runtime whose interpreter runs Python 3 code given as the path of a file).
Every job here is a short Python program mounted read-only at
``/data/transformations/algorithm``; the tests look only at what the Executor interface says
(results, logs, the host directories of outputs and logs), never at how a backend isolates.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import textwrap
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from atoll.engine.executor import (
    Execution,
    ExecutionLost,
    ExecutionResult,
    ExecutionSpec,
    Executor,
    ExitReason,
    InputUnreadable,
    Limits,
    Mount,
    Runtime,
    SandboxUnavailable,
)

ALGORITHM = "/data/transformations/algorithm"
LIMITS = Limits(
    memory_bytes=64 * 1024**2,
    pids=32,
    cpus=1.0,
    cpu_seconds=30,
    wall_seconds=30.0,
    file_size_bytes=4 * 1024**2,
    output_bytes=1024**2,
    log_bytes=64 * 1024,
)


class Log:
    """A log sink that can wait for a piece of text to arrive."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._grew = threading.Condition(self._lock)

    def __call__(self, chunk: bytes) -> None:
        with self._lock:
            self._chunks.append(chunk)
            self._grew.notify_all()

    @property
    def data(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)

    def wait_for(self, text: bytes, timeout: float = 30.0) -> bool:
        with self._grew:
            return self._grew.wait_for(lambda: text in b"".join(self._chunks), timeout)


class ExecutorConformance:
    """The Executor contract; see the module's text for the fixtures to provide."""

    _ids = itertools.count()

    @pytest.fixture
    def job_dir(self, tmp_path: Path) -> Path:
        return tmp_path

    def spec(
        self,
        job_dir: Path,
        runtime: Runtime,
        code: str,
        *,
        limits: Limits = LIMITS,
        mounts: Sequence[Mount] = (),
        env: dict[str, str] | None = None,
        egress: tuple[str, ...] = (),
    ) -> ExecutionSpec:
        n = next(self._ids)
        root = job_dir / f"job{n}"
        root.mkdir(mode=0o755)
        algorithm = root / "algorithm.py"
        algorithm.write_text(textwrap.dedent(code))
        algorithm.chmod(0o644)
        return ExecutionSpec(
            job_id=f"conformance-{os.getpid()}-{n}-{uuid.uuid4().hex[:8]}",
            runtime=runtime,
            args=[ALGORITHM],
            mounts=[Mount(algorithm, ALGORITHM), *mounts],
            env=env or {},
            outputs_dir=root / "outputs",
            logs_dir=root / "logs",
            limits=limits,
            egress=egress,
        )

    @staticmethod
    def finish(execution: Execution) -> ExecutionResult:
        try:
            return execution.wait()
        finally:
            execution.release()

    def run(
        self, executor: Executor, spec: ExecutionSpec
    ) -> tuple[ExecutionResult, bytes, dict[str, bytes]]:
        """Run to the end; the job's outputs as they were between wait() and release()."""
        log = Log()
        execution = executor.start(spec, log)
        try:
            result = execution.wait()
            outputs = {p.name: p.read_bytes() for p in spec.outputs_dir.iterdir() if p.is_file()}
        finally:
            execution.release()
        return result, log.data, outputs

    # -- running a job ---------------------------------------------------------------------

    def test_a_job_runs_and_its_output_is_logged(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> None:
        spec = self.spec(
            job_dir, runtime, "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)"
        )
        result, log, _ = self.run(executor, spec)
        assert (result.reason, result.exit_code) == (ExitReason.EXITED, 0)
        assert b"to stdout" in log and b"to stderr" in log

    def test_the_exit_code_is_reported(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> None:
        result, _, _ = self.run(executor, self.spec(job_dir, runtime, "raise SystemExit(3)"))
        assert (result.reason, result.exit_code) == (ExitReason.EXITED, 3)

    def test_the_environment_reaches_the_job(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> None:
        code = "import os\nprint('value=' + os.environ['ATOLL_CONFORMANCE'])"
        spec = self.spec(job_dir, runtime, code, env={"ATOLL_CONFORMANCE": "seen"})
        _, log, _ = self.run(executor, spec)
        assert b"value=seen" in log

    def test_outputs_and_logs_land_in_their_directories(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> None:
        code = """
            open('/data/outputs/result.csv', 'w').write('a,b\\n')
            open('/data/logs/own.log', 'w').write('own')
        """
        spec = self.spec(job_dir, runtime, code)
        log = Log()
        execution = executor.start(spec, log)
        try:
            assert execution.wait().exit_code == 0
            assert (spec.outputs_dir / "result.csv").read_bytes() == b"a,b\n"
            assert (spec.logs_dir / "own.log").read_bytes() == b"own"
        finally:
            execution.release()

    def test_inputs_are_read_only(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> None:
        data = job_dir / "data.csv"
        data.write_bytes(b"x,y\n")
        data.chmod(0o666)  # writable by anyone on the host: the mount alone must protect it
        code = """
            print('read=' + open('/data/inputs/d/0').read().strip())
            try:
                open('/data/inputs/d/0', 'a').write('tampered')
                print('wrote')
            except OSError:
                print('refused')
        """
        spec = self.spec(job_dir, runtime, code, mounts=[Mount(data, "/data/inputs/d/0")])
        result, log, _ = self.run(executor, spec)
        assert result.exit_code == 0
        assert b"read=x,y" in log and b"refused" in log and b"wrote" not in log
        assert data.read_bytes() == b"x,y\n"

    # -- limits ----------------------------------------------------------------------------

    def test_the_wall_clock_limit_kills_the_job(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> None:
        limits = dataclasses.replace(LIMITS, wall_seconds=1.0)
        spec = self.spec(job_dir, runtime, "import time\ntime.sleep(120)", limits=limits)
        result, _, _ = self.run(executor, spec)
        assert result.reason is ExitReason.TIMEOUT
        assert result.exit_code is None

    def test_the_memory_limit_holds(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> None:
        code = "hog = []\nwhile True:\n    hog.append(bytearray(1024 * 1024))"
        result, _, _ = self.run(executor, self.spec(job_dir, runtime, code))
        assert result.reason is ExitReason.OUT_OF_MEMORY

    def test_the_output_space_is_capped(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> None:
        code = """
            with open('/data/outputs/big', 'wb') as f:
                for _ in range(64):
                    f.write(b'x' * 65536)
        """
        result, _, _ = self.run(executor, self.spec(job_dir, runtime, code))
        assert result.reason is ExitReason.OUTPUT_LIMIT

    def test_the_log_is_capped(self, executor: Executor, runtime: Runtime, job_dir: Path) -> None:
        code = "import sys\nfor _ in range(64):\n    sys.stdout.write('y' * 4096)"
        result, log, _ = self.run(executor, self.spec(job_dir, runtime, code))
        assert result.reason is ExitReason.EXITED
        # the job wrote 256 KiB; what reaches the sink stops at the cap (plus a short note)
        assert log.startswith(b"y" * 1024)
        assert len(log) < LIMITS.log_bytes + 1024

    # -- stopping --------------------------------------------------------------------------

    def _started(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> tuple[ExecutionSpec, Execution, Log]:
        code = "import time\nprint('started', flush=True)\ntime.sleep(120)"
        spec = self.spec(job_dir, runtime, code)
        log = Log()
        execution = executor.start(spec, log)
        assert log.wait_for(b"started")
        return spec, execution, log

    def test_cancel_stops_the_job(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> None:
        _, execution, _ = self._started(executor, runtime, job_dir)
        execution.cancel()
        execution.cancel()  # idempotent
        result = self.finish(execution)
        assert result.reason is ExitReason.STOPPED

    def test_cancel_by_execution_id(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> None:
        _, execution, _ = self._started(executor, runtime, job_dir)
        executor.cancel(execution.execution_id)
        assert self.finish(execution).reason is ExitReason.STOPPED
        executor.cancel(execution.execution_id)  # nothing left: ignored

    # -- execution ids ---------------------------------------------------------------------

    def test_attach_by_execution_id(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> None:
        _, execution, _ = self._started(executor, runtime, job_dir)
        try:
            attached = executor.attach(execution.execution_id)
            assert attached.execution_id == execution.execution_id
            attached.cancel()
        finally:
            result = self.finish(execution)
        assert result.reason is ExitReason.STOPPED
        # released: nothing runs under that id any more
        with pytest.raises(ExecutionLost):
            executor.attach(execution.execution_id)

    def test_execution_ids_name_no_host_path(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> None:
        spec = self.spec(job_dir, runtime, "pass")
        execution = executor.start(spec, Log())
        try:
            assert str(job_dir) not in execution.execution_id
        finally:
            self.finish(execution)

    def test_an_unknown_execution_id_is_lost(self, executor: Executor) -> None:
        with pytest.raises(ExecutionLost):
            executor.attach(f"never-started-{uuid.uuid4().hex}")
        executor.cancel(f"never-started-{uuid.uuid4().hex}")  # ignored

    # -- failing closed --------------------------------------------------------------------

    def test_a_missing_input_fails_closed(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> None:
        missing = job_dir / "not-there.csv"
        spec = self.spec(job_dir, runtime, "pass", mounts=[Mount(missing, "/data/inputs/d/0")])
        with pytest.raises(SandboxUnavailable) as info:
            executor.start(spec, Log())
        assert str(job_dir) not in str(info.value)

    def test_a_missing_runtime_fails_closed(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> None:
        runtime = dataclasses.replace(runtime, interpreter=job_dir / "no-such-interpreter")
        with pytest.raises(SandboxUnavailable) as info:
            executor.start(self.spec(job_dir, runtime, "pass"), Log())
        assert str(job_dir) not in str(info.value)

    def test_an_invalid_allowlist_fails_closed(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> None:
        spec = self.spec(job_dir, runtime, "pass", egress=("not a host!",))
        with pytest.raises(SandboxUnavailable):
            executor.start(spec, Log())

    def test_a_publishers_file_the_job_cannot_read_is_refused(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> None:
        secret = job_dir / "owner-only.csv"
        secret.write_bytes(b"private")
        secret.chmod(0o600)
        mount = Mount(secret, "/data/inputs/d/0", publisher=True)
        spec = self.spec(job_dir, runtime, "pass", mounts=[mount])
        with pytest.raises(InputUnreadable) as info:
            executor.check_inputs(spec)
        assert info.value.target == "/data/inputs/d/0"
        assert str(job_dir) not in str(info.value)
        with pytest.raises(InputUnreadable):
            executor.start(spec, Log())

    def test_a_job_without_egress_has_no_network(
        self, executor: Executor, runtime: Runtime, job_dir: Path
    ) -> None:
        code = """
            import socket
            try:
                socket.create_connection(('192.0.2.1', 80), timeout=2)
                print('connected')
            except OSError:
                print('no network')
        """
        _, log, _ = self.run(executor, self.spec(job_dir, runtime, code))
        assert b"no network" in log
