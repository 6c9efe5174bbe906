"""The host identities jobs run as: one unprivileged uid per running job, and what such an
identity can read.

A job's uid comes from the executor's range, and its gid is the same number; it has no
supplementary groups. A uid is taken by holding an exclusive ``flock`` on a file named after it
in a directory that every executor on the host shares. The kernel drops that lock when its
holder dies, so after a crash the uids of the dead engine's jobs become free on their own, and
:meth:`UidPool.orphans` can tell a leftover process (its uid held by nobody) from a job of an
executor that still runs.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import stat
import threading
import time
from collections.abc import Collection
from pathlib import Path

from atoll.engine.executor import SandboxUnavailable

log = logging.getLogger(__name__)

#: far above the ids that distributions give to users and services, below the ranges that
#: systemd hands to containers; checked against the host's accounts before use
DEFAULT_UID_RANGE = (200_000, 200_999)
#: ids a job uid may never be: the overflow id that unmapped ids show as, and (uid_t)-1 in
#: 16 bits, which some interfaces still read as "no change"
_RESERVED = frozenset({65534, 65535})
_MAX_ID = 2**31 - 1
PROC = Path("/proc")


def check_range(first: int, last: int) -> None:
    """Raise ValueError unless ``first..last`` (inclusive) is a usable range of job ids."""
    if not 0 < first <= last <= _MAX_ID:
        raise ValueError(f"invalid job uid range {first}-{last}")
    if any(first <= r <= last for r in _RESERVED):
        raise ValueError(f"the job uid range {first}-{last} contains a reserved id")


def _overlaps(first: int, last: int, start: int, count: int) -> bool:
    return start <= last and first < start + count


def range_conflicts(first: int, last: int, etc: Path = Path("/etc")) -> list[str]:
    """What on this host already uses an id in ``first..last``: local users and groups, and
    the subordinate ids given to users for their own containers. Only local files are read
    (a directory service can be slow to list); empty when nothing does."""
    found: list[str] = []
    for name, what in (("passwd", "a user"), ("group", "a group")):
        try:
            lines = (etc / name).read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split(":")
            if len(fields) > 2 and fields[2].isdigit() and first <= int(fields[2]) <= last:
                found.append(what)
                break
    for name, what in (("subuid", "subordinate uids"), ("subgid", "subordinate gids")):
        try:
            lines = (etc / name).read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split(":")
            if (
                len(fields) == 3
                and fields[1].isdigit()
                and fields[2].isdigit()
                and _overlaps(first, last, int(fields[1]), int(fields[2]))
            ):
                found.append(what)
                break
    return found


class UidClaim:
    """One job uid, held until :meth:`release`."""

    def __init__(self, uid: int, fd: int, pool: UidPool) -> None:
        self.uid = uid
        self._fd = fd
        self._pool = pool

    def release(self) -> None:
        """Give the uid back. Idempotent."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            self._pool._forget(self.uid)
            os.close(fd)


class UidPool:
    """The job uids ``first..last``, claimed through lock files in ``claims_dir``.

    Uids are handed out round-robin, so a uid just given back is the last to be reused."""

    def __init__(self, first: int, last: int, claims_dir: Path) -> None:
        check_range(first, last)
        self.first = first
        self.last = last
        self.claims_dir = claims_dir
        self._lock = threading.Lock()
        self._next = first
        self._held: set[int] = set()

    def __len__(self) -> int:
        return self.last - self.first + 1

    def prepare(self) -> None:
        """Create the claims directory; raises OSError."""
        self.claims_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(self.claims_dir)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o077:
            raise OSError(errno.EPERM, "not a private directory of root", str(self.claims_dir))

    def _try(self, uid: int) -> UidClaim | None:
        path = self.claims_dir / str(uid)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        self._held.add(uid)
        return UidClaim(uid, fd, self)

    def _forget(self, uid: int) -> None:
        with self._lock:
            self._held.discard(uid)

    def claim(self) -> UidClaim:
        """A uid that no running job has; raises SandboxUnavailable when all are taken."""
        with self._lock:
            for _ in range(len(self)):
                uid = self._next
                self._next = self.first if uid == self.last else uid + 1
                if uid in self._held:
                    continue
                try:
                    claim = self._try(uid)
                except OSError as e:
                    raise SandboxUnavailable("cannot reserve a user id for the job") from e
                if claim is not None:
                    return claim
        raise SandboxUnavailable("every user id for jobs is in use; too many jobs run at once")

    def orphans(self) -> list[UidClaim]:
        """Claim every uid of the range that nobody holds and some process still has: such a
        process is left over from an engine that died. Only those uids are claimed, never the
        whole range, so that the other engines of the host go on starting jobs meanwhile."""
        found = []
        live = live_uids(self.first, self.last)
        with self._lock:
            for uid in sorted(live):
                if uid in self._held:
                    continue
                try:
                    claim = self._try(uid)
                except OSError as e:
                    log.warning("cannot check job uid %d: %s", uid, e)
                    continue
                if claim is not None:
                    found.append(claim)
        return found


# -- processes of job uids ---------------------------------------------------------------------


def _uids_of(pid: str) -> tuple[int, ...]:
    """Real, effective, saved and filesystem uid of a live process; () once it is gone or
    a zombie (dead already, waiting for its parent to reap it)."""
    try:
        with open(PROC / pid / "status", "rb") as f:
            for line in f:
                if line.startswith(b"State:") and line.split()[1:2] in ([b"Z"], [b"X"]):
                    return ()
                if line.startswith(b"Uid:"):
                    return tuple(int(x) for x in line.split()[1:])
    except (OSError, ValueError):
        pass
    return ()


def live_uids(first: int, last: int) -> set[int]:
    """The uids of ``first..last`` that some live process has."""
    found: set[int] = set()
    for entry in os.scandir(PROC):
        if entry.name.isdigit():
            found.update(u for u in _uids_of(entry.name) if first <= u <= last)
    return found


def processes_of(uids: Collection[int]) -> list[int]:
    """Host pids of the processes that have any of ``uids``."""
    wanted = set(uids)
    found = []
    for entry in os.scandir(PROC):
        if entry.name.isdigit() and wanted.intersection(_uids_of(entry.name)):
            found.append(int(entry.name))
    return found


def kill_processes_of(uids: Collection[int], timeout: float = 10.0) -> bool:
    """SIGKILL every process with any of ``uids`` until none is left; True when none is."""
    wanted = set(uids)
    if not wanted:
        return True
    deadline = time.monotonic() + timeout
    while True:
        pids = processes_of(wanted)
        if not pids:
            return True
        if time.monotonic() > deadline:
            return False
        for pid in pids:
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                # Checked again through the pidfd's process: the pid may have been reused
                # since the scan.
                if wanted.intersection(_uids_of(str(pid))):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except OSError:
                pass
            finally:
                os.close(pidfd)
        time.sleep(0.01)


# -- what a job uid can read -------------------------------------------------------------------


def _allowed(st: os.stat_result, uid: int, gid: int, bits: int) -> bool:
    """Whether the mode bits grant ``bits`` (a mask of 4=read, 2=write, 1=search) to uid:gid,
    the way the kernel picks one class: owner, else group, else others."""
    if uid == 0:
        return True
    if st.st_uid == uid:
        shift = 6
    elif st.st_gid == gid:
        shift = 3
    else:
        shift = 0
    return (st.st_mode >> shift) & bits == bits


def readable_by(path: str | os.PathLike[str], uid: int, gid: int) -> bool:
    """Whether a process with ``uid`` and ``gid`` and no supplementary groups can read
    ``path``: a file's content, or a directory's entries and everything below it.

    Parent directories are not looked at: the executor mounts the path itself, so only the
    path and what is below it must be readable. Mode bits only; ACLs are ignored. Symbolic
    links below a directory are not followed (inside the sandbox they point elsewhere)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        return _allowed(st, uid, gid, 4)
    pending = [os.fspath(path)]
    if not _allowed(st, uid, gid, 5):
        return False
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return False
        for entry in entries:
            try:
                if entry.is_symlink():
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                return False
            if stat.S_ISDIR(st.st_mode):
                if not _allowed(st, uid, gid, 5):
                    return False
                pending.append(entry.path)
            elif not _allowed(st, uid, gid, 4):
                return False
    return True
