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

A job with egress also has an :class:`~atoll.engine.sandbox.egress_proxy.EgressProxy` in the
engine's process, from start() until wait() returns.

A job in an image (a runtime with a ``root``) gets the same process tree, limits and mounts,
but its file system is the image's unpacked tree, read-only, instead of the host's ``/usr``:
each top-level entry of the image is bound into bubblewrap's root (through the job's overlay
of it, so no host path of the cache shows in its mount table), and the inner shell is the
host's statically linked busybox at ``/run/atoll/sh``, the one host file the job sees (an
image need not have a shell, and the job's command is an absolute path, so that none of
busybox's own programs stands in for one of the image's).

This module starts jobs and answers for them by execution id; the pieces live beside it:
:mod:`~atoll.engine.sandbox.host_probe` (what the host has), :mod:`~atoll.engine.sandbox.launch`
(checking and staging a job), :mod:`~atoll.engine.sandbox.execution` (a running job) and
:mod:`~atoll.engine.sandbox.recovery` (what a crashed process left).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from atoll.engine.executor import (
    ExecutionLost,
    ExecutionSpec,
    ExitReason,
    InputUnreadable,
    Limits,
    LogSink,
    Runtime,
    SandboxUnavailable,
)
from atoll.engine.sandbox import claim, mounts
from atoll.engine.sandbox.bwrap import (
    EGRESS_FAILED,
    Egress,
    ImageRoot,
    bwrap_argv,
    image_root_entries,
    launcher_script,
    setpriv_argv,
)
from atoll.engine.sandbox.cgroups import (
    CGROUP_ROOT,
    CgroupSystem,
    detect,
    job_cgroup_name,
)
from atoll.engine.sandbox.devices import gpu_devices
from atoll.engine.sandbox.egress_proxy import SOCKET_NAME, EgressProxy
from atoll.engine.sandbox.execution import SETUP_LOG_CAP, SandboxExecution
from atoll.engine.sandbox.host_probe import (
    LAUNCH_ENV,
    HostTools,
    check_uid_range,
    check_userns,
    probe_nproc_flag,
    probe_tools,
)
from atoll.engine.sandbox.ids import DEFAULT_UID_RANGE, UidPool, check_range, readable_by
from atoll.engine.sandbox.launch import allowlist_of, inode_cap, stage_job, undo_start, validate
from atoll.engine.sandbox.recovery import remove_leftovers
from atoll.engine.sandbox.seccomp import SYSTEM_PYTHON, program_fd
from atoll.engine.sandbox.stage import DEFAULT_STAGE_ROOT, JobStage, prepare_root

log = logging.getLogger(__name__)

DEFAULT_TMP_BYTES = 64 * 1024**2
#: how long bubblewrap may take to set a sandbox up before the start counts as failed
READY_TIMEOUT = 60.0
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
FORWARDER = Path(__file__).with_name("forwarder.py")


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
    only root may read gives EACCES inside (a publisher's input that the job could not read is
    refused before the start, see :meth:`check_inputs`), and a writable mount is writable only
    where its modes let any user write.

    An execution id names the job's cgroup under this executor's parent. A job's processes do
    not outlive the process that started them (bubblewrap's ``--die-with-parent``), so
    :meth:`attach` finds only executions of this process; one of an earlier process is lost,
    and :meth:`cancel` removes whatever it left.
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
        self._tools: HostTools | None = None
        self._nproc_flag: str | None = None
        self._stage_dir = stage_root / cgroup_name
        self._cgroups: CgroupSystem | None = None
        self._spawner: ThreadPoolExecutor | None = None
        self._spawner_lock = threading.Lock()
        self._probe_ids = itertools.count()
        #: executions started here and not yet released, by execution id
        self._live: dict[str, SandboxExecution] = {}
        # not self._lock: check() holds that while its self-test starts a job
        self._live_lock = threading.Lock()

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

    def _cgroup_system(self) -> CgroupSystem:
        if self._cgroups is None:
            self._cgroups = detect(
                mounts.MOUNTINFO.read_text(), root=self.cgroup_root, parent=self.cgroup_name
            )
        return self._cgroups

    def _probe(self) -> None:
        tools = probe_tools(self.bwrap, self.setpriv, self.seccomp_python)
        self._cgroup_system().prepare()
        prepare_root(self.stage_root, self.cgroup_name)
        claim.hold(self._stage_dir)
        if self._pool is not None:
            check_uid_range(self._pool)
            self._nproc_flag = probe_nproc_flag(tools.shell)
        check_userns(tools, self._pool, self.uid, self.gid)
        self._tools = tools
        self._self_test(tools)

    def _self_test(self, tools: HostTools) -> None:
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
                runtime=Runtime(Path(tools.shell)),
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

    # -- starting ---------------------------------------------------------------------------

    def start(self, spec: ExecutionSpec, on_log: LogSink) -> SandboxExecution:
        self.check()
        self.check_inputs(spec)
        if spec.gpus:
            spec = replace(spec, devices=(*spec.devices, *self.devices_for(spec.gpus)))
        return self._launch(spec, on_log)

    def execution_id(self, job_id: str) -> str:
        """The id a job's execution has here: its cgroup under this executor's parent."""
        return f"{self.cgroup_name}/{job_cgroup_name(job_id)}"

    def attach(self, execution_id: str) -> SandboxExecution:
        """The execution of this process with that id, until it is released; any other id is
        lost (an earlier process's jobs died with it)."""
        with self._live_lock:
            execution = self._live.get(execution_id)
        if execution is None:
            # an earlier process's job died with it (--die-with-parent): nothing to attach to
            raise ExecutionLost("the execution is not running on this provider")
        return execution

    def cancel(self, execution_id: str) -> None:
        """Cancel a live execution; for one an earlier process left, kill what still runs in
        its cgroup and remove the cgroup (its mounts go with :meth:`recover`)."""
        with self._live_lock:
            execution = self._live.get(execution_id)
        if execution is not None:
            execution.cancel()
            return
        parent, _, name = execution_id.partition("/")
        if parent != self.cgroup_name or not _NAME_RE.fullmatch(name) or name.startswith("."):
            return
        try:
            leftover = self._cgroup_system().existing(name)
        except SandboxUnavailable:
            return
        if leftover is not None:
            leftover.kill()
            leftover.remove()

    def devices_for(self, gpus: int) -> tuple[str, ...]:
        """The host device nodes that give a job ``gpus`` GPUs; those absent are left out."""
        return gpu_devices(gpus)

    def readable(self, path: str | os.PathLike[str]) -> bool:
        """Whether a job could read ``path`` (and everything below it) if it were one of its
        inputs; see :func:`~atoll.engine.sandbox.ids.readable_by`."""
        first = self._pool.first if self._pool is not None else None
        uid, gid = (first, first) if first is not None else (self.uid, self.gid)
        return readable_by(path, uid, gid)

    def check_inputs(self, spec: ExecutionSpec) -> None:
        for m in spec.mounts:
            if m.publisher and not self.readable(m.source):
                raise InputUnreadable(m.target)

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
            env=LAUNCH_ENV,
            cwd="/",
        )
        return future.result()

    def _launch(self, spec: ExecutionSpec, on_log: LogSink) -> SandboxExecution:
        tools = self._tools
        if tools is None:
            raise SandboxUnavailable("the sandbox was not checked")
        validate(spec, tools.host)
        image = self._image_root(spec, tools)
        allowlist = allowlist_of(spec)
        execution_id = self.execution_id(spec.job_id)
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
                stage = stage_job(spec, self._stage_dir, self.mount_marker, owner, egress, image)
            except FileNotFoundError as e:
                raise SandboxUnavailable("an input of the job is missing") from e
            except OSError as e:
                raise SandboxUnavailable("cannot stage the job's files for the sandbox") from e
            nproc = self._nproc_flag if claim is not None else None
            if not tools.seccomp:
                raise SandboxUnavailable("the system call filter of jobs was not built")
            try:
                seccomp_fd = program_fd(tools.seccomp)
            except OSError as e:
                raise SandboxUnavailable("cannot hand the system call filter to the sandbox") from e
            fds.append(seccomp_fd)
            argv = [
                tools.shell,
                "-c",
                launcher_script(cgroup.procs_files, limits, nproc_flag=nproc),
                "atoll-sandbox",
                *setpriv_argv(tools.setpriv, *owner),
                *bwrap_argv(
                    tools.bwrap,
                    spec,
                    shell=tools.shell,
                    host=tools.host,
                    uid=self.uid,
                    gid=self.gid,
                    tmp_bytes=self.tmp_bytes,
                    disable_userns=tools.disable_userns,
                    egress=egress,
                    source=stage.__getitem__,
                    seccomp_fd=seccomp_fd,
                    image=image,
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
                execution_id=execution_id,
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
                on_released=lambda: self._forget(execution_id),
            )
            with self._live_lock:
                self._live[execution_id] = execution
            if proxy is not None:
                proxy.on_refused = execution._egress_note
        except BaseException:
            undo_start(cgroup, proc, fds, mounted, proxy, stage, claim)
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
    def _image_root(spec: ExecutionSpec, tools: HostTools) -> ImageRoot | None:
        """What bubblewrap binds of an image runtime's root; None for the host's runtime."""
        root = spec.runtime.root
        if root is None:
            return None
        if tools.image_shell is None:
            raise SandboxUnavailable(
                "jobs in images need a statically linked shell on the host (busybox-static)"
            )
        try:
            entries = image_root_entries(root)
        except OSError as e:
            raise SandboxUnavailable("the image of the job cannot be read") from e
        return ImageRoot(entries, Path(tools.image_shell))

    def _forget(self, execution_id: str) -> None:
        with self._live_lock:
            self._live.pop(execution_id, None)

    # -- after a crash ----------------------------------------------------------------------

    def close(self) -> None:
        """Remove this executor's parent cgroups and staging directory once no job is left in
        them, and end the thread its jobs were forked from (a job forked from it dies with
        it: closed once its jobs are stopped)."""
        with self._spawner_lock:
            spawner, self._spawner = self._spawner, None
        if spawner is not None:
            spawner.shutdown(wait=False)
        if self._cgroups is not None:
            self._cgroups.remove_parent()
        with contextlib.suppress(OSError):
            self._stage_dir.rmdir()
        claim.let_go(self._stage_dir)

    def claim(self) -> None:
        """Claim this executor's name on the host (:mod:`atoll.engine.sandbox.claim`);
        SandboxUnavailable when another process runs jobs under it. A name no process ever
        ran a job under has no staging directory yet: the check claims it once it makes it."""
        if os.geteuid() == 0 and self._stage_dir.is_dir():
            claim.hold(self._stage_dir)

    def recover(self, keep: Collection[str] = ()) -> None:
        """Kill and remove every job cgroup under this executor's parent, unmount every tmpfs
        with its marker (outputs, logs, staging), and kill every process that has a job uid
        which no running executor holds. Meant for start-up, before any job runs: it would
        take down this process's own jobs too (though not those of other executors on the
        host, whose uids are held). ``keep`` is never more than this process's own live
        executions, which it does not have at start-up: an earlier process's jobs cannot be
        attached to, so none is kept."""
        if os.geteuid() != 0:
            return  # nothing this executor makes can exist without root
        self.claim()
        try:
            system: CgroupSystem | None = self._cgroup_system()
        except SandboxUnavailable as e:
            log.warning("no cgroups to recover: %s", e)
            system = None
        if not remove_leftovers(system, self.mount_marker, self._stage_dir, self._pool):
            raise SandboxUnavailable("processes of an earlier job could not be stopped")
