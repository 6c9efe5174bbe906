"""The default executor: bubblewrap namespaces, an unprivileged host uid per job, a cgroup
per job, rlimits, and size-capped tmpfs mounts for outputs and logs.

Process tree of a job, all of it inside the job's cgroup::

    sh (root: joins the cgroups, sets rlimits) --exec--> setpriv (drops to the job's uid)
      --exec--> bwrap (monitor, host pid ns, job uid)
        bwrap (pid 1 of the job's pid namespace, reaps)
            sh (signals ready, redirects stderr) --exec--> interpreter args...
            interpreter forwarder.py (only with egress; relays to the job's EgressProxy)

bubblewrap applies the job's seccomp filter (:mod:`atoll.engine.sandbox.seccomp`) to both of
its processes inside the sandbox before the job's code runs, and the setup channel (bubblewrap's
stderr) is read only until the inner shell says it is ready.

Every process after setpriv has the job's host uid and gid and no capabilities in the host's
user namespace; inside its own user namespace the job sees itself as ``uid``:``gid`` (65534,
"nobody", by default). With a uid range (the default) each running job has a uid of its own, so
jobs cannot signal or trace each other even outside their namespaces, and RLIMIT_NPROC caps the
job's processes like its cgroup does.

A job with egress also has an :class:`~atoll.engine.sandbox.egress.EgressProxy` in the engine's
process, from start() until wait() returns.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import math
import os
import re
import select
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from atoll.engine.executor import (
    ExecutionResult,
    ExecutionSpec,
    ExitReason,
    Limits,
    LogSink,
    Runtime,
    SandboxUnavailable,
)
from atoll.engine.sandbox import mounts
from atoll.engine.sandbox.bwrap import (
    EGRESS_FAILED,
    READY,
    Egress,
    HostSystem,
    bwrap_argv,
    launcher_script,
    probe_host_system,
    setpriv_argv,
)
from atoll.engine.sandbox.cgroups import (
    CGROUP_ROOT,
    CgroupSystem,
    JobCgroup,
    detect,
    job_cgroup_name,
)
from atoll.engine.sandbox.devices import gpu_devices, is_char_device
from atoll.engine.sandbox.egress import SOCKET_NAME, Allowlist, EgressProxy
from atoll.engine.sandbox.ids import (
    DEFAULT_UID_RANGE,
    UidClaim,
    UidPool,
    check_range,
    kill_processes_of,
    range_conflicts,
    readable_by,
)
from atoll.engine.sandbox.seccomp import SYSTEM_PYTHON, build_filter, program_fd
from atoll.engine.sandbox.stage import DEFAULT_STAGE_ROOT, JobStage, prepare_root

log = logging.getLogger(__name__)

DEFAULT_TMP_BYTES = 64 * 1024**2
#: how long bubblewrap may take to set a sandbox up before the start counts as failed
READY_TIMEOUT = 60.0
#: bytes of unexpected bubblewrap chatter copied into the server log per job
SETUP_LOG_CAP = 4096
_SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_SHELLS = ("/usr/bin/sh", "/bin/sh")
_LAUNCH_ENV = {"PATH": "/usr/bin:/bin"}
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
FORWARDER = Path(__file__).with_name("forwarder.py")


def inode_cap(nbytes: int) -> int:
    """nr_inodes for a capped tmpfs: one per 4 KiB of space, at least 256. Without a cap an
    empty-file flood would pin kernel memory that the size cap does not count."""
    return min(max(nbytes // 4096, 256), 1 << 20)


def truncation_note(cap: int) -> bytes:
    return f"\n[atoll] log truncated: the job wrote more than {cap} bytes\n".encode()


def _under(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return root == "/" or path == root or path.startswith(root + "/")


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
    """A running job. Thread-safe: :meth:`cancel` may come from any thread while another one
    is in :meth:`wait`."""

    def __init__(
        self,
        *,
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
    ) -> None:
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


class SandboxExecutor:
    """Runs jobs under bubblewrap with a cgroup and an unprivileged host uid each. Needs root
    (cgroups, mounts, switching uids), setpriv (util-linux) and unprivileged user namespaces.

    ``cgroup_name`` names the parent cgroup of all jobs and, with ``-job`` appended, the
    source of the tmpfs mounts the executor makes; :meth:`recover` finds leftovers by these
    names, so two executors that share a host must use different names.

    ``uid`` and ``gid`` are the ids a job sees itself as inside its sandbox. On the host, each
    running job has a uid of its own from ``uid_range`` (inclusive; its gid is the same
    number), claimed in ``stage_root``, which the executors of a host share so that they never
    hand out the same uid; none of these ids may belong to an account of the host. With
    ``uid_range=None`` every job runs as host ``uid``:``gid`` instead: jobs then share a uid,
    so RLIMIT_NPROC is not set (it would count the processes of all of them together) and
    :meth:`recover` cannot tell their leftover processes by uid.

    A job reads its inputs, and writes to a writable mount, as that unprivileged uid: a file
    only root may read gives EACCES inside (see :meth:`readable`), and a writable mount is
    writable only where its modes let any user write.
    """

    name = "sandbox"

    def __init__(
        self,
        cgroup_name: str = "atoll",
        bwrap: str = "bwrap",
        uid: int = 65534,
        *,
        gid: int | None = None,
        uid_range: tuple[int, int] | None = DEFAULT_UID_RANGE,
        tmp_bytes: int = DEFAULT_TMP_BYTES,
        cgroup_root: Path = CGROUP_ROOT,
        stage_root: Path = DEFAULT_STAGE_ROOT,
        setpriv: str = "setpriv",
        seccomp_python: str = SYSTEM_PYTHON,
    ) -> None:
        if not _NAME_RE.fullmatch(cgroup_name) or cgroup_name.startswith("."):
            raise ValueError(f"invalid cgroup name {cgroup_name!r}")
        if uid_range is not None:
            check_range(*uid_range)
        self.cgroup_name = cgroup_name
        self.mount_marker = f"{cgroup_name}-job"
        self.bwrap = bwrap
        self.setpriv = setpriv
        self.seccomp_python = seccomp_python
        #: the compiled system call filter of every job, built once by the probe
        self._seccomp = b""
        self.uid = uid
        self.gid = uid if gid is None else gid
        self.uid_range = uid_range
        self.tmp_bytes = tmp_bytes
        self.cgroup_root = cgroup_root
        self.stage_root = stage_root
        self._pool = (
            None if uid_range is None else UidPool(*uid_range, claims_dir=stage_root / "uids")
        )
        self._lock = threading.Lock()
        self._checked = False
        self._check_error: SandboxUnavailable | None = None
        self._bwrap_path = ""
        self._setpriv_path = ""
        self._nproc_flag: str | None = None
        self._stage_dir = stage_root / cgroup_name
        self._shell = ""
        self._disable_userns = False
        self._host = HostSystem()
        self._cgroups: CgroupSystem | None = None
        self._spawner: ThreadPoolExecutor | None = None
        self._spawner_lock = threading.Lock()
        self._probe_ids = itertools.count()

    # -- probing --------------------------------------------------------------------------

    def check(self) -> None:
        with self._lock:
            if not self._checked:
                try:
                    self._probe()
                except SandboxUnavailable as e:
                    self._check_error = e
                except Exception as e:
                    log.exception("sandbox self-test failed")
                    self._check_error = SandboxUnavailable("the sandbox self-test failed")
                    self._check_error.__cause__ = e
                self._checked = True
        if self._check_error is not None:
            raise SandboxUnavailable(str(self._check_error)) from self._check_error

    @staticmethod
    def _resolve(program: str, missing: str) -> str:
        if "/" in program:
            path: str | None = os.path.abspath(program)
        else:
            path = shutil.which(program, path=_SEARCH_PATH)
        if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
            raise SandboxUnavailable(missing)
        return path

    def _cgroup_system(self) -> CgroupSystem:
        if self._cgroups is None:
            self._cgroups = detect(
                mounts.MOUNTINFO.read_text(), root=self.cgroup_root, parent=self.cgroup_name
            )
        return self._cgroups

    def _probe(self) -> None:
        if os.geteuid() != 0:
            raise SandboxUnavailable("the sandbox needs root to create cgroups and mounts")
        self._bwrap_path = self._resolve(self.bwrap, "bubblewrap is not installed")
        self._setpriv_path = self._resolve(
            self.setpriv,
            "setpriv (util-linux) is not installed; jobs cannot be run as an unprivileged user",
        )
        try:
            helped = subprocess.run(
                [self._bwrap_path, "--help"],
                capture_output=True,
                timeout=30,
                env=_LAUNCH_ENV,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as e:
            raise SandboxUnavailable("bubblewrap cannot be run") from e
        usage = helped.stdout.decode(errors="replace") + helped.stderr.decode(errors="replace")
        if "--size" not in usage or "--remount-ro" not in usage:
            raise SandboxUnavailable("the installed bubblewrap is too old; 0.8 or newer is needed")
        self._disable_userns = "--disable-userns" in usage
        shell = next((s for s in _SHELLS if os.access(s, os.X_OK)), None)
        if shell is None:
            raise SandboxUnavailable("no POSIX shell is installed")
        self._shell = shell
        self._host = probe_host_system()
        if "--seccomp" not in usage:
            raise SandboxUnavailable("the installed bubblewrap cannot apply a seccomp filter")
        self._seccomp = build_filter(self.seccomp_python)
        self._cgroup_system().prepare()
        prepare_root(self.stage_root, self.cgroup_name)
        if self._pool is not None:
            self._check_uid_range()
            self._nproc_flag = self._probe_nproc_flag()
        self._check_userns()
        self._self_test()

    def _check_uid_range(self) -> None:
        assert self._pool is not None
        first, last = self._pool.first, self._pool.last
        clashes = range_conflicts(first, last)
        if clashes:
            raise SandboxUnavailable(
                f"the user ids for jobs ({first}-{last}) overlap ids the host gives to "
                + " and ".join(clashes)
                + "; choose another range"
            )
        try:
            self._pool.prepare()
        except OSError as e:
            raise SandboxUnavailable("cannot prepare the reservations of job user ids") from e

    def _probe_nproc_flag(self) -> str:
        """The shell's ulimit option for RLIMIT_NPROC: shells disagree (``-u`` in bash, ``-p``
        in dash, where bash's ``-p`` is the pipe size), so the one that sets it is found by
        trying."""
        probe = 4000 + os.getpid() % 1000
        for flag in ("-u", "-p"):
            try:
                done = subprocess.run(
                    [self._shell, "-c", f"ulimit {flag} {probe} && exec cat /proc/self/limits"],
                    capture_output=True,
                    timeout=30,
                    env=_LAUNCH_ENV,
                    check=False,
                )
            except (OSError, subprocess.SubprocessError):
                continue
            for line in done.stdout.decode(errors="replace").splitlines():
                if line.startswith("Max processes") and line.split()[2:4] == [str(probe)] * 2:
                    return flag
        raise SandboxUnavailable("the shell cannot limit the number of a job's processes")

    def _check_userns(self) -> None:
        """bubblewrap, as an unprivileged uid, can make its namespaces: the kernel may forbid
        unprivileged user namespaces (a sysctl, or an LSM policy)."""
        claim = self._pool.claim() if self._pool is not None else None
        uid, gid = (claim.uid, claim.uid) if claim is not None else (self.uid, self.gid)
        argv = [
            *setpriv_argv(self._setpriv_path, uid, gid),
            self._bwrap_path,
            "--unshare-user",
            "--unshare-pid",
            "--unshare-net",
            # the base system only, as jobs get it: a recursive bind of "/" would remount every
            # mount of the host, and fail when another job's mounts go away meanwhile
            "--ro-bind",
            self._host.usr,
            self._host.usr,
            *(a for target, link in self._host.links for a in ("--symlink", target, link)),
            *(a for d in self._host.dirs for a in ("--ro-bind", d, d)),
            "--",
            self._shell,
            "-c",
            ":",
        ]
        try:
            done = subprocess.run(
                argv, capture_output=True, timeout=30, env=_LAUNCH_ENV, check=False, cwd="/"
            )
        except (OSError, subprocess.SubprocessError) as e:
            raise SandboxUnavailable("bubblewrap cannot be run as an unprivileged user") from e
        finally:
            if claim is not None:
                claim.release()
        if done.returncode != 0:
            log.error(
                "bubblewrap as an unprivileged user: %s",
                done.stderr[:SETUP_LOG_CAP].decode(errors="replace"),
            )
            raise SandboxUnavailable(
                "unprivileged user namespaces are not available on this host; jobs cannot be "
                "run as an unprivileged user"
            )

    def _self_test(self) -> None:
        """Run a trivial job end to end: cgroup, tmpfs mounts, every bubblewrap option, and
        the job's uid able to write where it should and nowhere else."""
        with tempfile.TemporaryDirectory(prefix="atoll-probe-") as tmp:
            root = Path(tmp)
            script = (
                "test -w /data/outputs && test -w /data/logs && test -w /tmp"
                " && ! test -w / && ! test -w /usr"
                f' && test "$(id -u):$(id -g)" = {self.uid}:{self.gid}'
            )
            spec = ExecutionSpec(
                job_id=f"probe-{os.getpid()}-{next(self._probe_ids)}",
                runtime=Runtime(Path(self._shell)),
                args=["-c", script],
                mounts=[],
                env={},
                outputs_dir=root / "outputs",
                logs_dir=root / "logs",
                limits=Limits(
                    memory_bytes=64 * 1024**2,
                    pids=8,
                    cpu_seconds=10,
                    wall_seconds=30,
                    output_bytes=64 * 1024,
                    log_bytes=64 * 1024,
                ),
            )
            output: list[bytes] = []
            execution = self._launch(spec, output.append)
            try:
                result = execution.wait()
            finally:
                execution.release()
        if result.reason is not ExitReason.EXITED or result.exit_code != 0:
            log.error("sandbox self-test: %s; output: %r", result, b"".join(output)[:2000])
            raise SandboxUnavailable("a trivial sandboxed job did not run correctly")

    # -- starting ---------------------------------------------------------------------------

    def start(self, spec: ExecutionSpec, on_log: LogSink) -> SandboxExecution:
        self.check()
        return self._launch(spec, on_log)

    def _visible(self, path: str, roots: list[str]) -> bool:
        for target, link in self._host.links:
            if _under(path, link):
                path = "/" + target.strip("/") + path[len(link) :]
        return any(_under(path, r) for r in roots)

    def _validate(self, spec: ExecutionSpec) -> None:
        runtime = spec.runtime
        for p in runtime.paths:
            if not p.is_absolute() or os.path.realpath(p) == "/" or not p.exists():
                raise SandboxUnavailable("a path of the runtime is not installed")
        interpreter = runtime.interpreter
        real = os.path.realpath(interpreter)
        if (
            not interpreter.is_absolute()
            or not os.path.isfile(real)
            or not os.access(real, os.X_OK)
        ):
            raise SandboxUnavailable("the runtime interpreter is not installed")
        roots = [self._host.usr, *self._host.dirs, *(str(p) for p in runtime.paths)]
        real_roots = [os.path.realpath(r) for r in roots]
        if not (
            self._visible(os.path.normpath(interpreter), roots) and self._visible(real, real_roots)
        ):
            raise SandboxUnavailable("the runtime interpreter is outside the runtime's paths")
        for m in spec.mounts:
            if not m.target.startswith("/") or ".." in m.target.split("/"):
                raise SandboxUnavailable("an input of the job has an invalid location")
            if not m.source.exists():
                raise SandboxUnavailable("an input of the job is missing")
        if not spec.workdir.startswith("/"):
            raise SandboxUnavailable("the job's working directory is not absolute")
        for d in spec.devices:
            if not d.startswith("/") or os.path.normpath(d) != d:
                raise SandboxUnavailable("a device of the job has an invalid path")
            # Absent nodes are skipped; present ones must be character devices, never a disk.
            if os.path.lexists(d) and not is_char_device(d):
                raise SandboxUnavailable("a device of the job is not a character device")

    def devices_for(self, gpus: int) -> tuple[str, ...]:
        return gpu_devices(gpus)

    def readable(self, path: str | os.PathLike[str]) -> bool:
        """Whether a job could read ``path`` (and everything below it) if it were one of its
        inputs; see :func:`~atoll.engine.sandbox.ids.readable_by`."""
        first = self._pool.first if self._pool is not None else None
        uid, gid = (first, first) if first is not None else (self.uid, self.gid)
        return readable_by(path, uid, gid)

    def _stage(
        self, spec: ExecutionSpec, owner: tuple[int, int], egress: Egress | None
    ) -> JobStage:
        """Bind everything of the job's own that bubblewrap needs into its staging tmpfs.
        Raises OSError (after unmounting what it mounted)."""
        sources: list[Path] = [*spec.runtime.paths, *(m.source for m in spec.mounts if m.writable)]
        sources += [spec.outputs_dir, spec.logs_dir]
        if egress is not None:
            sources += [egress.socket_dir, egress.forwarder]
        presented = [m for m in spec.mounts if not m.writable]
        stage = JobStage(self._stage_dir / job_cgroup_name(spec.job_id), self.mount_marker, owner)
        # an overlay takes three entries: its mount point, its layer and the entry in it
        stage.mount(len(sources) + 3 * len(presented) + len(spec.devices))
        try:
            for m in presented:
                stage.present(m.source, name=m.content, fingerprint=m.fingerprint)
            for source in sources:
                stage.add(source)
            for d in spec.devices:
                stage.add(Path(d), optional=True)
        except BaseException:
            with contextlib.suppress(OSError):
                stage.remove()
            raise
        return stage

    @staticmethod
    def _allowlist(spec: ExecutionSpec) -> Allowlist | None:
        if not spec.egress:
            return None
        try:
            return Allowlist.parse(spec.egress)
        except ValueError as e:
            # The entries are the publisher's, not for the consumer to read.
            log.error("job %s: %s", spec.job_id, e)
            raise SandboxUnavailable("the job's network allowlist is invalid") from e

    def _spawn(
        self, argv: list[str], log_w: int, setup_w: int, seccomp_fd: int
    ) -> subprocess.Popen[bytes]:
        # bwrap --die-with-parent follows the *thread* that forked it (PR_SET_PDEATHSIG), so
        # jobs are forked from one long-lived thread rather than from the caller's, which
        # may end while the job runs.
        if self._spawner is None:
            with self._spawner_lock:
                if self._spawner is None:
                    self._spawner = ThreadPoolExecutor(1, thread_name_prefix="atoll-sandbox")
        future = self._spawner.submit(
            subprocess.Popen,
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_w,
            stderr=setup_w,
            close_fds=True,
            pass_fds=(seccomp_fd,),
            start_new_session=True,
            env=_LAUNCH_ENV,
            cwd="/",
        )
        return future.result()

    def _launch(self, spec: ExecutionSpec, on_log: LogSink) -> SandboxExecution:
        self._validate(spec)
        allowlist = self._allowlist(spec)
        limits = spec.limits
        try:
            spec.outputs_dir.mkdir(parents=True, exist_ok=True)
            spec.logs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SandboxUnavailable("cannot create the job's output directories") from e
        claim = self._pool.claim() if self._pool is not None else None
        owner = (claim.uid, claim.uid) if claim is not None else (self.uid, self.gid)
        try:
            cgroup = self._cgroup_system().create(spec.job_id, limits)
        except BaseException:
            if claim is not None:
                claim.release()
            raise
        mounted: list[Path] = []
        proc: subprocess.Popen[bytes] | None = None
        proxy: EgressProxy | None = None
        stage: JobStage | None = None
        fds: list[int] = []
        try:
            for target, size in (
                (spec.outputs_dir, limits.output_bytes),
                (spec.logs_dir, limits.log_bytes),
            ):
                try:
                    mounts.mount_tmpfs(
                        self.mount_marker, target, size, inode_cap(size), owner=owner
                    )
                except OSError as e:
                    raise SandboxUnavailable("cannot mount the job's capped output space") from e
                mounted.append(target)
            egress: Egress | None = None
            if allowlist is not None:
                proxy = EgressProxy(allowlist, name=spec.job_id)
                try:
                    socket_dir = proxy.start(owner=owner)
                except OSError as e:
                    raise SandboxUnavailable("cannot start the job's network proxy") from e
                egress = Egress(socket_dir, SOCKET_NAME, FORWARDER)
            try:
                stage = self._stage(spec, owner, egress)
            except FileNotFoundError as e:
                raise SandboxUnavailable("an input of the job is missing") from e
            except OSError as e:
                raise SandboxUnavailable("cannot stage the job's files for the sandbox") from e
            nproc = self._nproc_flag if claim is not None else None
            if not self._seccomp:
                raise SandboxUnavailable("the system call filter of jobs was not built")
            try:
                seccomp_fd = program_fd(self._seccomp)
            except OSError as e:
                raise SandboxUnavailable("cannot hand the system call filter to the sandbox") from e
            fds.append(seccomp_fd)
            argv = [
                self._shell,
                "-c",
                launcher_script(cgroup.procs_files, limits, nproc_flag=nproc),
                "atoll-sandbox",
                *setpriv_argv(self._setpriv_path, *owner),
                *bwrap_argv(
                    self._bwrap_path,
                    spec,
                    shell=self._shell,
                    host=self._host,
                    uid=self.uid,
                    gid=self.gid,
                    tmp_bytes=self.tmp_bytes,
                    disable_userns=self._disable_userns,
                    egress=egress,
                    source=stage.__getitem__,
                    seccomp_fd=seccomp_fd,
                ),
            ]
            log_r, log_w = os.pipe()
            fds += [log_r, log_w]
            setup_r, setup_w = os.pipe()
            fds += [setup_r, setup_w]
            try:
                proc = self._spawn(argv, log_w, setup_w, seccomp_fd)
            except OSError as e:
                raise SandboxUnavailable("the sandbox launcher cannot be run") from e
            started = time.monotonic()
            for fd in (log_w, setup_w, seccomp_fd):
                os.close(fd)
                fds.remove(fd)
            pidfd = os.pidfd_open(proc.pid)
            fds.append(pidfd)
            # Built (and its reader thread started) while bubblewrap is still setting up, so
            # the thread start overlaps with that wait.
            execution = SandboxExecution(
                spec=spec,
                proc=proc,
                pidfd=pidfd,
                cgroup=cgroup,
                mounted=mounted,
                on_log=on_log,
                log_fd=log_r,
                setup_fd=setup_r,
                started=started,
                egress=proxy,
                stage=stage,
                claim=claim,
            )
            if proxy is not None:
                proxy.on_refused = execution._egress_note
        except BaseException:
            self._undo(cgroup, proc, fds, mounted, proxy, stage, claim)
            raise
        try:
            ready, said = execution.wait_ready(READY_TIMEOUT)
        except BaseException:
            execution.release()
            raise
        if not ready:
            log.error(
                "sandbox of job %s did not start: %s",
                spec.job_id,
                said[:SETUP_LOG_CAP].decode(errors="replace"),
            )
            execution.release()
            if proxy is not None and EGRESS_FAILED in said:
                raise SandboxUnavailable(
                    "the network forwarder could not start in the sandbox"
                    " (a job with network access needs a Python runtime)"
                )
            raise SandboxUnavailable("the sandbox could not be set up")
        return execution

    @staticmethod
    def _undo(
        cgroup: JobCgroup,
        proc: subprocess.Popen[bytes] | None,
        fds: list[int],
        mounted: list[Path],
        proxy: EgressProxy | None,
        stage: JobStage | None,
        claim: UidClaim | None,
    ) -> None:
        """Take back a start that failed before its execution existed."""
        emptied = cgroup.kill()
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        if proxy is not None:
            proxy.close()
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        if stage is not None:
            with contextlib.suppress(OSError):
                stage.remove()
        for target in reversed(mounted):
            with contextlib.suppress(OSError):
                mounts.unmount(target)
        cgroup.remove(timeout=2.0)
        if claim is not None and emptied:
            claim.release()

    # -- after a crash ----------------------------------------------------------------------

    def close(self) -> None:
        """Remove this executor's parent cgroups and staging directory once no job is left in
        them."""
        if self._cgroups is not None:
            self._cgroups.remove_parent()
        with contextlib.suppress(OSError):
            self._stage_dir.rmdir()

    def recover(self) -> None:
        """Kill and remove every job cgroup under this executor's parent, unmount every tmpfs
        with its marker (outputs, logs, staging), and kill every process that has a job uid
        which no running executor holds. Meant for start-up, before any job runs: it would
        take down this process's own jobs too (though not those of other executors on the
        host, whose uids are held)."""
        if os.geteuid() != 0:
            return  # nothing this executor makes can exist without root
        stuck = 0
        try:
            system = self._cgroup_system()
        except SandboxUnavailable as e:
            log.warning("no cgroups to recover: %s", e)
            system = None
        if system is not None:
            for job in system.leftovers():
                if not job.kill():
                    stuck += 1
                job.remove()
        for m in mounts.marked_mounts(self.mount_marker):
            try:
                mounts.unmount(m.mount_point)
            except OSError as e:
                # One inside a staging tmpfs went with it when that was detached.
                if e.errno != errno.EINVAL:
                    log.warning("cannot unmount a leftover job mount: %s", e)
        with contextlib.suppress(OSError), os.scandir(self._stage_dir) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    os.rmdir(entry.path)
        if self._pool is not None and not self._recover_uids():
            stuck += 1
        if stuck:
            raise SandboxUnavailable("processes of an earlier job could not be stopped")

    def _recover_uids(self) -> bool:
        """Kill the processes of job uids that nobody holds; False if some survive."""
        assert self._pool is not None
        first, last = self._pool.first, self._pool.last
        if range_conflicts(first, last):
            log.error("job uids %d-%d belong to host accounts too: not killing by uid", first, last)
            return True
        try:
            self._pool.prepare()
        except OSError as e:
            log.warning("cannot check the job uids for leftovers: %s", e)
            return True
        orphans = self._pool.orphans()
        try:
            return kill_processes_of([c.uid for c in orphans])
        finally:
            for claim in orphans:
                claim.release()
