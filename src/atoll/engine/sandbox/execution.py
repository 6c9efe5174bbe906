"""A running sandboxed job: its log and setup channels, its limits while it runs, how it
ended, and what it holds until it is released.

The log reader thread forwards the job's stdout and stderr (capped at its log limit) and reads
bubblewrap's setup channel only until the sandbox says it is ready; the wall-clock limit is
enforced by whichever of the reader and :meth:`SandboxExecution.wait` notices it first.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from atoll.engine.executor import ExecutionResult, ExecutionSpec, ExitReason, LogSink
from atoll.engine.sandbox import mounts
from atoll.engine.sandbox.bwrap import READY
from atoll.engine.sandbox.cgroups import JobCgroup
from atoll.engine.sandbox.egress_proxy import EgressProxy
from atoll.engine.sandbox.ids import UidClaim
from atoll.engine.sandbox.stage import JobStage

log = logging.getLogger(__name__)

#: bytes of unexpected bubblewrap chatter copied into the server log per job
SETUP_LOG_CAP = 4096


def truncation_note(cap: int) -> bytes:
    return f"\n[atoll] log truncated: the job wrote more than {cap} bytes\n".encode()


def _is_full(path: Path) -> bool:
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_bavail == 0 or st.f_favail == 0


def _signal_of(code: int | None) -> int:
    """The signal that ended the job, or 0. bubblewrap exits with 128+N when the job died
    from signal N; a negative code is bubblewrap itself killed."""
    if code is None:
        return 0
    if code < 0:
        return -code
    return code - 128 if code > 128 else 0


def _human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


class SandboxExecution:
    """A running job, known to its executor by :attr:`execution_id` until it is released.
    Thread-safe: :meth:`cancel` may come from any thread while another one is in
    :meth:`wait`."""

    def __init__(
        self,
        *,
        execution_id: str,
        spec: ExecutionSpec,
        proc: subprocess.Popen[bytes],
        pidfd: int,
        cgroup: JobCgroup,
        mounted: list[Path],
        on_log: LogSink,
        log_fd: int,
        setup_fd: int,
        started: float,
        egress: EgressProxy | None = None,
        stage: JobStage | None = None,
        claim: UidClaim | None = None,
        on_released: Callable[[], None] | None = None,
    ) -> None:
        self.execution_id = execution_id
        self._on_released = on_released
        self._spec = spec
        self._limits = spec.limits
        self._proc = proc
        self._pidfd = pidfd
        self._cgroup = cgroup
        self._mounted = mounted
        self._on_log = on_log
        self._log_fd = log_fd
        self._setup_fd = setup_fd
        self._started = started
        self._egress = egress
        self._stage = stage
        self._claim = claim
        #: whether wait() saw the cgroup empty: only then is the job's uid free for another job
        self._emptied = False
        self._deadline = started + spec.limits.wall_seconds
        self._lock = threading.Lock()
        self._wait_lock = threading.Lock()
        self._kill_reason: ExitReason | None = None
        self._exited = False
        self._result: ExecutionResult | None = None
        self._released = False
        # the log reader and the egress proxy both write to the job's log
        self._log_lock = threading.Lock()
        self._log_sent = 0
        self._log_truncated = False
        self._sink_failed = False
        # set once the setup channel said READY (start succeeded) or closed without it
        self._setup_decided = threading.Event()
        self._setup_ok = False
        self._setup_said = b""
        self._pump = threading.Thread(
            target=self._run_pump, name=f"atoll-sandbox-log-{spec.job_id}", daemon=True
        )
        self._pump.start()

    # -- limits and cancellation -------------------------------------------------------

    def _terminate(self, reason: ExitReason) -> bool:
        with self._lock:
            if self._exited or self._kill_reason is not None:
                return False
            self._kill_reason = reason
        self._cgroup.signal_all()
        return True

    def cancel(self) -> None:
        if self._terminate(ExitReason.STOPPED):
            # Killing bubblewrap's pid 1 takes the whole pid namespace with it; the loop
            # catches anything that was between fork and exit at that moment.
            self._cgroup.kill(timeout=1.0)

    def _remaining_ms(self) -> int:
        if self._kill_reason is not None or self._exited:
            return 1000
        left = self._deadline - time.monotonic()
        if math.isinf(left):
            return 60_000
        return max(0, min(60_000, math.ceil(left * 1000)))

    # -- output -------------------------------------------------------------------------

    def _emit(self, chunk: bytes) -> None:
        if self._sink_failed:
            return
        try:
            self._on_log(chunk)
        except Exception:
            # The job keeps running and its pipe keeps draining; only forwarding stops.
            self._sink_failed = True
            log.exception("log sink of job %s failed; its log is dropped", self._spec.job_id)

    def _forward(self, data: bytes) -> None:
        with self._log_lock:
            cap = self._limits.log_bytes
            room = cap - self._log_sent
            if room > 0:
                piece = data[:room]
                self._log_sent += len(piece)
                self._emit(piece)
            if len(data) > room and not self._log_truncated:
                self._log_truncated = True
                self._emit(truncation_note(cap))

    def _egress_note(self, line: str) -> None:
        self._forward(f"[atoll] {line}\n".encode())

    @property
    def egress(self) -> EgressProxy | None:
        """The job's egress proxy, None for a job without network."""
        return self._egress

    def _setup_chatter(self, data: bytes) -> bool:
        """Take what bubblewrap or the launcher said before the job started; True once the
        channel is done with (the sandbox is ready)."""
        said = self._setup_said + data
        if READY not in said:
            self._setup_said = said[-SETUP_LOG_CAP:]
            return False
        before, _, after = said.partition(READY)
        self._setup_said = before
        self._setup_ok = True
        self._setup_decided.set()
        if after:
            # Written after READY: by then the job's own code runs, and the sandbox's pid 1,
            # which holds the channel, shares its uid. Never logged as the provider's words.
            log.warning(
                "sandbox of job %s: %d bytes after its start on the setup channel, ignored",
                self._spec.job_id,
                len(after),
            )
        return True

    def _run_pump(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._log_fd, selectors.EVENT_READ, self._forward)
        sel.register(self._setup_fd, selectors.EVENT_READ, None)
        try:
            while sel.get_map():
                events = sel.select(self._remaining_ms() / 1000)
                if not events and self._kill_reason is None:
                    if time.monotonic() >= self._deadline:
                        self._terminate(ExitReason.TIMEOUT)
                    continue
                for key, _ in events:
                    data = os.read(key.fd, 65536)
                    if key.fd == self._setup_fd:
                        # Closed once the sandbox is ready: whatever the job manages to write
                        # there later (through the pid 1 it shares a uid with) reaches no one.
                        if not data or self._setup_chatter(data):
                            sel.unregister(key.fd)
                            os.close(key.fd)
                            # without READY first, the setup failed
                            self._setup_decided.set()
                        continue
                    if not data:
                        sel.unregister(key.fd)
                        os.close(key.fd)
                        continue
                    key.data(data)
        except Exception:
            log.exception("log reader of job %s failed", self._spec.job_id)
        finally:
            self._setup_decided.set()
            for key in list(sel.get_map().values()):
                with contextlib.suppress(OSError):
                    os.close(key.fd)
            sel.close()

    def wait_ready(self, timeout: float) -> tuple[bool, bytes]:
        """Whether the sandbox came up (its inner shell runs), and what bubblewrap or the
        launcher said before that: an error message when it did not."""
        self._setup_decided.wait(timeout)
        return self._setup_ok, self._setup_said

    # -- the end of the job -------------------------------------------------------------

    def _wait_exit(self) -> tuple[int | None, float]:
        poller = select.poll()
        poller.register(self._pidfd, select.POLLIN)
        while not poller.poll(self._remaining_ms()):
            if self._kill_reason is not None:
                self._cgroup.signal_all()
            elif time.monotonic() >= self._deadline:
                self._terminate(ExitReason.TIMEOUT)
        try:
            _, status, usage = os.wait4(self._proc.pid, 0)
        except ChildProcessError:
            # Reaped by someone else (a server that ignores SIGCHLD): the status is lost.
            return None, 0.0
        return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime

    def wait(self) -> ExecutionResult:
        with self._wait_lock:
            if self._result is not None:
                return self._result
            code, cpu_used = self._wait_exit()
            with self._lock:
                self._exited = True
            duration = time.monotonic() - self._started
            self._proc.returncode = -signal.SIGKILL if code is None else code
            self._emptied = self._cgroup.kill()
            if not self._emptied:
                log.error("processes of job %s survive in its cgroup", self._spec.job_id)
            if self._egress is not None:
                self._egress.close()
            self._pump.join(timeout=10)
            with contextlib.suppress(OSError):
                os.close(self._pidfd)
            self._result = self._classify(code, cpu_used, duration)
            return self._result

    def _classify(self, code: int | None, cpu_used: float, duration: float) -> ExecutionResult:
        limits = self._limits
        reason = self._kill_reason
        if reason is ExitReason.STOPPED:
            return ExecutionResult(reason, None, duration, "the job was stopped")
        if reason is ExitReason.TIMEOUT:
            detail = f"the job ran past its wall-clock limit of {limits.wall_seconds:g} s"
            return ExecutionResult(reason, None, duration, detail)
        sig = _signal_of(code)
        if code != 0 and self._cgroup.oom_kills() > 0:
            detail = f"the job exceeded its memory limit of {_human_bytes(limits.memory_bytes)}"
            return ExecutionResult(ExitReason.OUT_OF_MEMORY, code, duration, detail)
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_used >= limits.cpu_seconds):
            detail = f"the job used more than its {limits.cpu_seconds} s of CPU time"
            return ExecutionResult(ExitReason.CPU_TIME, code, duration, detail)
        outputs_full = _is_full(self._spec.outputs_dir)
        logs_full = _is_full(self._spec.logs_dir)
        if sig == signal.SIGXFSZ or outputs_full or logs_full:
            if outputs_full:
                detail = f"the job filled its output space of {_human_bytes(limits.output_bytes)}"
            elif logs_full:
                detail = f"the job filled its log space of {_human_bytes(limits.log_bytes)}"
            else:
                size = _human_bytes(limits.file_size_bytes)
                detail = f"the job wrote a file past its size limit of {size}"
            return ExecutionResult(ExitReason.OUTPUT_LIMIT, code, duration, detail)
        if sig:
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            detail = f"the job was killed by {name}"
        elif code is None:
            detail = "the job ended; its exit status is unknown"
        else:
            detail = f"the job exited with code {code}"
        if self._log_truncated:
            detail += f"; its log was truncated at {_human_bytes(limits.log_bytes)}"
        return ExecutionResult(ExitReason.EXITED, code, duration, detail)

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        if self._result is None:
            self.cancel()
            self.wait()
        if self._egress is not None:
            self._egress.close()
        if self._stage is not None:
            try:
                self._stage.remove()
            except OSError as e:
                log.warning("cannot unmount the staging of job %s: %s", self._spec.job_id, e)
        for target in reversed(self._mounted):
            try:
                mounts.unmount(target)
            except OSError as e:
                log.warning("cannot unmount the output space of job %s: %s", self._spec.job_id, e)
        self._cgroup.remove()
        if self._claim is not None:
            if self._emptied:
                self._claim.release()
            else:
                # Kept for as long as this process lives: a survivor would share it otherwise.
                log.error("the user id of job %s stays reserved", self._spec.job_id)
        if self._on_released is not None:
            self._on_released()
