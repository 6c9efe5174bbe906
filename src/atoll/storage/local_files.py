"""Reaching a file on the provider's host the way a job would, and noticing when it changed:
the mechanics under the local storage backend (:mod:`atoll.storage.local`) and the catalog's
checks of a publisher's files.

Every component of a location is opened with ``O_NOFOLLOW``: a location is stored fully
resolved at publish time, so a symbolic link anywhere on the way later means the path was
swapped, and it is refused rather than followed. Readability is judged as the job's user would
reach the file: every directory on the way must let it search, and the file must let it read.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import BinaryIO

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_PATH first: opening a FIFO or a device node for reading could block or act on a device
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC

READ, SEARCH = 4, 1


class FileRefused(Exception):
    """Why a location cannot be used; the message names no path and says how to fix it."""


@dataclass(frozen=True)
class Fingerprint:
    """What changes when a file's bytes may have changed: a file equal in all of these is taken
    to hold the bytes it was hashed with (ctime moves on every write and cannot be set back)."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int

    @classmethod
    def of(cls, st: os.stat_result) -> Fingerprint:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    def as_list(self) -> list[int]:
        return [self.size, self.mtime_ns, self.ctime_ns, self.ino, self.dev]

    @classmethod
    def from_list(cls, values: list[int]) -> Fingerprint:
        size, mtime_ns, ctime_ns, ino, dev = (int(v) for v in values)
        return cls(size, mtime_ns, ctime_ns, ino, dev)


def permits(st: os.stat_result, uid: int, gid: int, want: int) -> bool:
    """Whether mode bits give ``uid``/``gid`` (no supplementary groups) every bit of ``want``
    (READ, SEARCH or both). ACLs are not looked at."""
    if st.st_uid == uid:
        bits = (st.st_mode >> 6) & 7
    elif st.st_gid == gid:
        bits = (st.st_mode >> 3) & 7
    else:
        bits = st.st_mode & 7
    return bits & want == want


@dataclass(frozen=True)
class OpenedFile:
    """A file reached without following links: ``dir_fd`` is its directory, ``name`` its name
    there, ``fd`` an O_PATH descriptor of the file itself, ``stat`` its status, and
    ``directories`` the status of every directory from ``/`` down to it."""

    dir_fd: int
    name: str
    fd: int
    stat: os.stat_result
    directories: tuple[os.stat_result, ...]

    @property
    def fingerprint(self) -> Fingerprint:
        return Fingerprint.of(self.stat)

    def readable_by(self, uid: int, gid: int) -> bool:
        return all(permits(d, uid, gid, SEARCH) for d in self.directories) and permits(
            self.stat, uid, gid, READ
        )

    def _reader(self) -> BinaryIO:
        # the O_PATH descriptor cannot be read itself: reopened through /proc, it is still
        # this very file, whatever the name holds by now
        return os.fdopen(os.open(f"/proc/self/fd/{self.fd}", os.O_RDONLY | os.O_CLOEXEC), "rb")

    def sha256(self) -> str:
        """Hash what the descriptor holds (not whatever the name holds by now)."""
        digest = hashlib.sha256()
        with self._reader() as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes of what the descriptor holds."""
        with self._reader() as fh:
            return fh.read(size)

    def still_named(self) -> bool:
        """Whether the name in its directory is still this very file."""
        try:
            now = os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
        except OSError:
            return False
        return (now.st_dev, now.st_ino) == (self.stat.st_dev, self.stat.st_ino)

    def close(self) -> None:
        for fd in (self.fd, self.dir_fd):
            with suppress(OSError):
                os.close(fd)


def split(location: str) -> list[str]:
    """The components of an absolute, normal location; FileRefused if it is not one."""
    if not location.startswith("/"):
        raise FileRefused("the location must be an absolute path")
    parts = [p for p in location.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts) or "\0" in location:
        raise FileRefused("the location must be a plain absolute path (no '.' or '..')")
    return parts


def open_nofollow(location: str) -> OpenedFile:
    """Reach ``location`` from ``/`` one component at a time, never following a link.
    Raises FileRefused (a link on the way, not a regular file) or FileNotFoundError and other
    OSErrors."""
    parts = split(location)
    dirs: list[os.stat_result] = []
    fd = os.open("/", _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            dirs.append(os.fstat(fd))
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if _is_link(part, fd):
                    raise FileRefused("a directory on the way is a symbolic link") from None
                raise e
            os.close(fd)
            fd = nxt
        dirs.append(os.fstat(fd))
        file_fd = os.open(parts[-1], _PATH_FLAGS, dir_fd=fd)
    except BaseException:
        os.close(fd)
        raise
    st = os.fstat(file_fd)
    if stat.S_ISLNK(st.st_mode):
        os.close(file_fd)
        os.close(fd)
        raise FileRefused("it is a symbolic link")
    if not stat.S_ISREG(st.st_mode):
        os.close(file_fd)
        os.close(fd)
        raise FileRefused("it is not a regular file")
    return OpenedFile(fd, parts[-1], file_fd, st, tuple(dirs))


@contextmanager
def opened(location: str) -> Iterator[OpenedFile]:
    f = open_nofollow(location)
    try:
        yield f
    finally:
        f.close()


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


#: how a publisher makes a file readable by jobs
FIX_HINT = (
    "jobs run as a user of their own: make the file readable by others and every directory "
    "above it searchable (chmod o+r FILE; chmod o+x each directory)"
)
