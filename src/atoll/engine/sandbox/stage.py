"""Staging: how bubblewrap, running as a job's unprivileged uid, reaches host paths that only
root can reach.

bubblewrap resolves every source path itself, as the uid it runs as, even a ``--bind-fd``
one (it ``realpath()``s the fd's link), so a path below a directory such as a 0700 job
directory under root's home cannot be its source. The executor, as root, therefore bind-mounts
each such path into a small tmpfs of the job's own (its root is the job uid's, mode 0500),
and bubblewrap binds from there. Only what a path itself allows stays in force: a file that
the job uid may not read is still unreadable inside.

Read-only inputs are not bound from their host path but presented through an overlay of the
job's own (:meth:`JobStage.present`): a bind mount shows its host path in the job's
``/proc/self/mountinfo`` (the path of its root inside its filesystem), an overlay shows "/"
and the layers it was given, which are ``/proc/self/fd/N`` of this process and a directory of
the stage. A file is reached through a metacopy entry named by its checksum that redirects to
the real file in a data-only layer (its directory, opened without following links), so the
job's mount table names the file by content; reads go straight to the real file. The entry
has the file's owner and mode, so a file the job uid may not read stays unreadable inside.

The staging tmpfs is mounted with the executor's marker, so :meth:`SandboxExecutor.recover`
finds and detaches it, with every bind in it, like the output mounts. The directory above it
is a private mount, so none of these mounts reach other mount namespaces.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from pathlib import Path

from atoll.engine.executor import InputChanged, SandboxUnavailable
from atoll.engine.sandbox import mounts
from atoll.storage.local_files import FileRefused, Fingerprint, open_nofollow

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


def _metacopy(entry: Path, st: os.stat_result, redirect: str) -> None:
    """An overlay metacopy entry: no data (a sparse file of the real size), the real file's
    owner, mode and times, and where its data is."""
    fd = os.open(entry, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o400)
    try:
        os.ftruncate(fd, st.st_size)
        os.fchown(fd, st.st_uid, st.st_gid)
        os.fchmod(fd, st.st_mode & 0o777)
        os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.setxattr(fd, "trusted.overlay.metacopy", b"")
        os.setxattr(fd, "trusted.overlay.redirect", redirect.encode())
    finally:
        os.close(fd)


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

    def _slot(self) -> tuple[Path, Path]:
        """A new overlay mount point of the stage and an empty layer directory beside it."""
        self._count += 1
        top = self.path / str(self._count)
        layer = self.path / f"{self._count}.layer"
        for d in (top, layer):
            d.mkdir(mode=0o555)
            os.chmod(d, 0o555)
        return top, layer

    def present(self, source: Path, *, name: str = "", fingerprint: tuple[int, ...] = ()) -> str:
        """Make a read-only ``source`` reachable for bubblewrap through an overlay, named in
        the job's mount table by ``name`` (a file's checksum; default its base name) and never
        by its host path; return the path bubblewrap should use. A file must still have
        ``fingerprint`` (if given) when it is mounted, else InputChanged. Raises OSError."""
        key = os.fspath(source)
        if key in self._staged:
            return self._staged[key]
        if stat.S_ISDIR(os.stat(source).st_mode):
            top, layer = self._slot()
            fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                mounts.mount_overlay(f"lowerdir=/proc/self/fd/{fd}:{layer}", top)
            finally:
                os.close(fd)
            self._staged[key] = str(top)
            return str(top)
        # A verified input (with a fingerprint) was stored fully resolved: a link on its way
        # now means it was swapped. The job's own files may sit below a linked ATOLL_HOME.
        try:
            f = open_nofollow(key if fingerprint else os.path.realpath(key))
        except FileRefused as e:
            if fingerprint:
                raise InputChanged("an input of the job is no longer a plain file") from e
            raise OSError(errno.EINVAL, "not a regular file", key) from e
        try:
            if fingerprint and Fingerprint.of(f.stat).as_list() != list(fingerprint):
                raise InputChanged("an input of the job changed after it was verified")
            entry = name or f.name
            top, layer = self._slot()
            _metacopy(layer / entry, f.stat, "/" + f.name)
            data = f"/proc/self/fd/{f.dir_fd}"
            try:
                # "::" makes the file's directory a data-only layer (Linux 6.5+): nothing in
                # it is listed, only redirects reach it
                mounts.mount_overlay(
                    f"lowerdir={layer}::{data},metacopy=on,redirect_dir=follow", top
                )
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise
                mounts.mount_overlay(
                    f"lowerdir={layer}:{data},metacopy=on,redirect_dir=follow", top
                )
            staged = top / entry
            os.stat(staged)  # the overlay looks the redirect up now, once
            if not f.still_named():
                raise InputChanged("an input of the job was replaced while it was staged")
        finally:
            f.close()
        self._staged[key] = str(staged)
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
