"""One cgroup per job, on cgroup v1 (one directory per controller hierarchy) or v2 (one
directory in the unified hierarchy).

Limits are written before any process joins; the job's launcher shell then writes its own pid
into every ``cgroup.procs`` of :attr:`JobCgroup.procs_files` before it execs bubblewrap, so
nothing of the job ever runs outside the cgroup.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from atoll.engine.executor import Limits, SandboxUnavailable
from atoll.engine.sandbox.mounts import MountEntry, parse_mountinfo

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids", "cpu")
CFS_PERIOD_US = 100_000
#: bubblewrap's monitor process and its pid-1 reaper live in the job's cgroup too
SANDBOX_PIDS = 2

_WHAT = {"memory": "memory", "pids": "process-count", "cpu": "CPU"}


@dataclass(frozen=True)
class LimitFile:
    """One value written into a job cgroup. ``controller`` names the v1 hierarchy (empty on
    v2). An optional file is written only when the kernel provides it (swap accounting, for
    instance, can be compiled out)."""

    controller: str
    name: str
    value: str
    required: bool = True


def cpu_quota_us(cpus: float) -> int | None:
    """The CFS quota per :data:`CFS_PERIOD_US` for ``cpus`` cores; None means no CPU cap."""
    if cpus <= 0:
        return None
    # The kernel refuses quotas under 1 ms.
    return max(1000, round(cpus * CFS_PERIOD_US))


def max_pids(limits: Limits) -> int:
    return max(1, limits.pids) + SANDBOX_PIDS


def v1_limit_files(limits: Limits) -> list[LimitFile]:
    quota = cpu_quota_us(limits.cpus)
    memory = str(max(limits.memory_bytes, 1))
    return [
        # memsw must never be below limit_in_bytes, so limit_in_bytes goes first.
        LimitFile("memory", "memory.limit_in_bytes", memory),
        LimitFile("memory", "memory.memsw.limit_in_bytes", memory, required=False),
        LimitFile("memory", "memory.swappiness", "0", required=False),
        LimitFile("pids", "pids.max", str(max_pids(limits))),
        LimitFile("cpu", "cpu.cfs_period_us", str(CFS_PERIOD_US)),
        LimitFile("cpu", "cpu.cfs_quota_us", str(quota if quota is not None else -1)),
    ]


def v2_limit_files(limits: Limits) -> list[LimitFile]:
    quota = cpu_quota_us(limits.cpus)
    return [
        LimitFile("", "memory.max", str(max(limits.memory_bytes, 1))),
        LimitFile("", "memory.swap.max", "0", required=False),
        # Kill the whole job on OOM rather than leave it running with a random process gone.
        LimitFile("", "memory.oom.group", "1", required=False),
        LimitFile("", "pids.max", str(max_pids(limits))),
        LimitFile("", "cpu.max", f"{quota if quota is not None else 'max'} {CFS_PERIOD_US}"),
    ]


def job_cgroup_name(job_id: str) -> str:
    """A directory name for the job: safe characters only, and distinct for distinct ids."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", job_id)[:96]
    if safe == job_id and safe:
        return f"job-{safe}"
    digest = hashlib.sha256(job_id.encode()).hexdigest()[:12]
    return f"job-{safe}-{digest}"


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read_pids(path: Path) -> set[int]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return set()
    except OSError as e:
        # the job's own clean-up can remove the directory between open and read (a stop racing
        # the job's end): the kernel answers ENODEV, and a removed cgroup holds no process
        if e.errno == errno.ENODEV:
            return set()
        raise
    return {int(x) for x in text.split()}


def _read_counter(path: Path, key: str) -> int | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return None


class JobCgroup:
    """The cgroup directories of one job (one per v1 hierarchy, or one on v2)."""

    def __init__(self, version: int, dirs: dict[str, Path]) -> None:
        self.version = version
        #: controller -> directory on v1; a single "" entry on v2
        self.by_controller = dict(dirs)
        # co-mounted v1 controllers share one directory
        self.dirs = tuple(dict.fromkeys(dirs.values()))

    @property
    def procs_files(self) -> tuple[Path, ...]:
        return tuple(d / "cgroup.procs" for d in self.dirs)

    def pids(self) -> set[int]:
        found: set[int] = set()
        for f in self.procs_files:
            found |= _read_pids(f)
        return found

    def signal_all(self) -> None:
        """One SIGKILL to every process now in the cgroup, without waiting."""
        if self.version == 2:
            try:
                _write(self.dirs[0] / "cgroup.kill", "1")
                return
            except OSError:
                pass  # before 5.14: fall back to signalling each process
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def kill(self, timeout: float = 10.0) -> bool:
        """SIGKILL every process until the cgroup is empty; True when it is. A fork bomb is
        bounded by pids.max, so the loop catches up with it."""
        deadline = time.monotonic() + timeout
        pause = 0.0005
        while True:
            if not self.pids():
                return True
            self.signal_all()
            if time.monotonic() > deadline:
                return not self.pids()
            time.sleep(pause)
            pause = min(pause * 2, 0.02)

    def oom_kills(self) -> int:
        """How many processes the kernel OOM-killed for this cgroup's memory limit."""
        if self.version == 2:
            return _read_counter(self.dirs[0] / "memory.events", "oom_kill") or 0
        memory_dir = self.by_controller.get("memory")
        if memory_dir is None:
            return 0
        count = _read_counter(memory_dir / "memory.oom_control", "oom_kill")
        if count is not None:
            return count
        # Kernels before 4.13 have no oom_kill counter: fall back to "the limit was hit".
        failcnt = memory_dir / "memory.failcnt"
        try:
            return 1 if int(failcnt.read_text()) > 0 else 0
        except (OSError, ValueError):
            return 0

    def remove(self, timeout: float = 5.0) -> bool:
        """rmdir every directory; True when all are gone. Killed processes can take a moment
        to leave, so EBUSY is retried."""
        deadline = time.monotonic() + timeout
        ok = True
        for d in self.dirs:
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        log.warning("cannot remove job cgroup %s: %s", d, e)
                        ok = False
                        break
                    self.signal_all()
                    time.sleep(0.01)
        return ok


class CgroupSystem:
    """Where job cgroups live: ``<hierarchy>/<parent>/<job>`` for each hierarchy."""

    version: int = 0

    def __init__(self, hierarchies: dict[str, Path], parent: str) -> None:
        # controller -> mount point (v1); on v2 a single "" entry
        self.hierarchies = hierarchies
        self.parent = parent

    def parent_dirs(self) -> dict[str, Path]:
        return {c: root / self.parent for c, root in self.hierarchies.items()}

    def prepare(self) -> None:
        """Create the parent cgroup(s); raise SandboxUnavailable when that is impossible."""
        raise NotImplementedError

    def limit_files(self, limits: Limits) -> list[LimitFile]:
        raise NotImplementedError

    def create(self, job_id: str, limits: Limits) -> JobCgroup:
        """Make the job's cgroup with its limits written; raise SandboxUnavailable."""
        name = job_cgroup_name(job_id)
        dirs = {c: p / name for c, p in self.parent_dirs().items()}
        job = JobCgroup(self.version, dirs)
        # A cgroup left by an earlier run of the same job: nothing of it may survive.
        if any(d.exists() for d in dirs.values()) and not (job.kill() and job.remove()):
            raise SandboxUnavailable("cannot clear an earlier cgroup of this job")
        created: dict[str, Path] = {}
        try:
            for c, d in dirs.items():
                if d in created.values():
                    continue
                try:
                    d.mkdir()
                except OSError as e:
                    what = f"{_WHAT[c]} " if c in _WHAT else ""
                    raise SandboxUnavailable(f"cannot create the job's {what}cgroup") from e
                created[c] = d
            for lf in self.limit_files(limits):
                path = dirs[lf.controller] / lf.name
                if not lf.required and not path.exists():
                    continue
                try:
                    _write(path, lf.value)
                except OSError as e:
                    if not lf.required:
                        continue
                    what = _WHAT.get(lf.name.split(".")[0], "resource")
                    raise SandboxUnavailable(f"cannot set the job's {what} limit") from e
        except BaseException:
            JobCgroup(self.version, created).remove(timeout=1.0)
            raise
        return job

    def remove_parent(self) -> None:
        """Remove the parent cgroups if no job is left in them (a busy one stays)."""
        for d in self.parent_dirs().values():
            with contextlib.suppress(OSError):
                d.rmdir()

    def existing(self, name: str) -> JobCgroup | None:
        """The job cgroup called ``name`` under the parent, if it exists."""
        dirs = {c: p / name for c, p in self.parent_dirs().items() if (p / name).is_dir()}
        return JobCgroup(self.version, dirs) if dirs else None

    def leftovers(self) -> list[JobCgroup]:
        """Job cgroups that exist under the parent, e.g. after a crash."""
        names: set[str] = set()
        for p in self.parent_dirs().values():
            try:
                names |= {e.name for e in os.scandir(p) if e.is_dir(follow_symlinks=False)}
            except FileNotFoundError:
                continue
        out = []
        for name in sorted(names):
            dirs = {c: p / name for c, p in self.parent_dirs().items() if (p / name).is_dir()}
            out.append(JobCgroup(self.version, dirs))
        return out


class CgroupV1(CgroupSystem):
    version = 1

    def prepare(self) -> None:
        for c, d in self.parent_dirs().items():
            try:
                d.mkdir(exist_ok=True)
            except OSError as e:
                raise SandboxUnavailable(f"cannot create the {_WHAT[c]} cgroup for jobs") from e

    def limit_files(self, limits: Limits) -> list[LimitFile]:
        return v1_limit_files(limits)


class CgroupV2(CgroupSystem):
    version = 2

    def __init__(self, root: Path, parent: str) -> None:
        super().__init__({"": root}, parent)
        self.root = root

    def prepare(self) -> None:
        wanted = set(CONTROLLERS)
        enable = " ".join(f"+{c}" for c in CONTROLLERS)
        parent = self.root / self.parent
        try:
            if not wanted <= set((self.root / "cgroup.subtree_control").read_text().split()):
                _write(self.root / "cgroup.subtree_control", enable)
            parent.mkdir(exist_ok=True)
            if not wanted <= set((parent / "cgroup.subtree_control").read_text().split()):
                _write(parent / "cgroup.subtree_control", enable)
        except OSError as e:
            raise SandboxUnavailable(
                "cannot enable the memory, pids and cpu controllers for job cgroups"
            ) from e

    def limit_files(self, limits: Limits) -> list[LimitFile]:
        return v2_limit_files(limits)


def _read_text(path: Path) -> str:
    return path.read_text()


def detect(
    mountinfo: str,
    root: Path = CGROUP_ROOT,
    parent: str = "atoll",
    read_text: Callable[[Path], str] = _read_text,
) -> CgroupSystem:
    """Pick the cgroup layout from the mount table: v2 when ``root`` is a cgroup2 mount that
    offers memory, pids and cpu; otherwise v1 when each of them has a hierarchy."""
    entries = parse_mountinfo(mountinfo)
    for m in entries:
        if m.fstype == "cgroup2" and Path(m.mount_point) == root:
            try:
                available = set(read_text(root / "cgroup.controllers").split())
            except OSError:
                available = set()
            if set(CONTROLLERS) <= available:
                return CgroupV2(root, parent)
    hierarchies = _v1_hierarchies(entries)
    if all(c in hierarchies for c in CONTROLLERS):
        return CgroupV1({c: hierarchies[c] for c in CONTROLLERS}, parent)
    missing = [c for c in CONTROLLERS if c not in hierarchies]
    raise SandboxUnavailable(
        "no cgroup hierarchy offers the " + ", ".join(missing) + " controller(s) jobs need"
    )


def _v1_hierarchies(entries: Sequence[MountEntry]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for m in entries:
        if m.fstype != "cgroup":
            continue
        for c in CONTROLLERS:
            # Several mounts can show one hierarchy; the first one is as good as any.
            if c in m.super_options and c not in found:
                found[c] = Path(m.mount_point)
    return found
