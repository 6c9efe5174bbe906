"""Staging: how bubblewrap, running as a job's unprivileged uid, reaches host paths that only
root can reach.

bubblewrap resolves every source path itself, as the uid it runs as, even a ``--bind-fd``
one (it ``realpath()``s the fd's link), so a path below a directory such as a 0700 job
directory under root's home cannot be its source. The executor, as root, therefore bind-mounts
each such path into a small tmpfs of the job's own (its root is the job uid's, mode 0500),
and bubblewrap binds from there. Only what a path itself allows stays in force: a file that
the job uid may not read is still unreadable inside.

The staging tmpfs is mounted with the executor's marker, so :meth:`SandboxExecutor.recover`
finds and detaches it, with every bind in it, like the output mounts. The directory above it
is a private mount, so none of these mounts reach other mount namespaces.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path

from atoll.engine.executor import SandboxUnavailable
from atoll.engine.sandbox import mounts

DEFAULT_STAGE_ROOT = Path("/run/atoll-sandbox")


def _safe_chain(path: Path) -> bool:
    """Whether every directory from ``/`` down to ``path`` is root's, writable by nobody
    else (or sticky), and searchable by anyone: then no other user can swap a part of the path,
    and a job uid can get through it."""
    if not path.is_absolute():
        return False
    for directory in (*reversed(path.parents), path):
        try:
            st = os.lstat(directory)
        except OSError:
            return False
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0:
            return False
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            return False
        if not st.st_mode & 0o001:
            return False
    return True


def prepare_root(root: Path, name: str) -> Path:
    """Create ``root`` (shared by the executors of a host) as a private mount and
    ``root/name`` for this executor's jobs; return the latter. Raises SandboxUnavailable."""
    try:
        root.mkdir(mode=0o711, parents=True, exist_ok=True)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as e:
        raise SandboxUnavailable("cannot create the sandbox's staging directory") from e
    try:
        if not _safe_chain(root):
            raise SandboxUnavailable(
                "the sandbox's staging directory is not safe: it or a directory above it is "
                "not root's, is writable by others, or is not searchable"
            )
        os.fchmod(fd, 0o711)
        # Executors of other processes may prepare the same root at the same time.
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not mounts.is_mount_point(root):
            mounts.bind(root, root, recursive=False)
        mounts.make_private(root)
        mine = root / name
        mine.mkdir(mode=0o711, exist_ok=True)
        os.chmod(mine, 0o711)
    except OSError as e:
        raise SandboxUnavailable("cannot prepare the sandbox's staging directory") from e
    finally:
        os.close(fd)
    return mine


class JobStage:
    """The staging tmpfs of one job, at ``path``, owned by ``owner`` (uid, gid)."""

    def __init__(self, path: Path, marker: str, owner: tuple[int, int]) -> None:
        self.path = path
        self.marker = marker
        self.owner = owner
        self.mounted = False
        self._count = 0
        #: host path -> where bubblewrap finds it
        self._staged: dict[str, str] = {}

    def mount(self, entries: int) -> None:
        """Raises OSError."""
        with contextlib.suppress(FileExistsError):
            self.path.mkdir(mode=0o700)
        # Empty files and directories only: no data blocks, one inode each.
        mounts.mount_tmpfs(
            self.marker, self.path, 4 * mounts.PAGE_SIZE, entries + 8, mode=0o500, owner=self.owner
        )
        self.mounted = True

    def add(self, source: Path, *, optional: bool = False) -> str:
        """Bind ``source`` into the stage and return the path bubblewrap should use for it.
        With ``optional``, a missing source is skipped and the returned path does not exist
        (for bubblewrap's ``-try`` options). Raises OSError."""
        key = os.fspath(source)
        if key in self._staged:
            return self._staged[key]
        self._count += 1
        staged = self.path / str(self._count)
        self._staged[key] = str(staged)
        try:
            is_dir = stat.S_ISDIR(os.stat(source).st_mode)
        except FileNotFoundError:
            if optional:
                return str(staged)
            raise
        if is_dir:
            staged.mkdir(mode=0o500)
        else:
            os.close(os.open(staged, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o400))
        mounts.bind(source, staged)
        return str(staged)

    def __getitem__(self, source: Path) -> str:
        return self._staged[os.fspath(source)]

    def remove(self) -> None:
        """Detach the stage with every bind in it and remove its mount point. Raises OSError."""
        if self.mounted:
            mounts.unmount(self.path)
            self.mounted = False
        with contextlib.suppress(FileNotFoundError):
            self.path.rmdir()
