"""The local storage backend: dataset inputs are files on the provider's own disk, reached
without following links (:mod:`atoll.storage.local_files`), and results are files under a
directory of the provider's (``<root>/<key>``), written whole through a temporary file and a
rename."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from atoll.storage.errors import InputModified, InputUnavailable, ObjectNotFound, StorageError
from atoll.storage.interface import (
    CHUNK,
    PreparedInput,
    Progress,
    PublishedInput,
    StoredObject,
    key_parts,
)
from atoll.storage.local_files import FileRefused, OpenedFile, opened

#: why a publisher's file is out of a job's reach, and how the publisher fixes it
NOT_READABLE = "is not readable by the sandbox user (the publisher must make it readable by others)"
GONE = "is no longer available"
CHANGED = "has changed since it was published"


def _stream(f: OpenedFile) -> BinaryIO:
    # what the O_PATH descriptor holds, not whatever the name holds by now
    fd = os.open(f"/proc/self/fd/{f.fd}", os.O_RDONLY | os.O_CLOEXEC)
    return os.fdopen(fd, "rb")


class LocalInputs:
    """Dataset inputs on this host: a location is an absolute path, stored fully resolved
    when the file was published, so a link on its way now means it was swapped."""

    def prepare(
        self,
        published: PublishedInput,
        job_user: tuple[int, int] | None,
        progress: Progress | None = None,
    ) -> PreparedInput:
        try:
            with opened(published.location) as f:
                if job_user is not None and not f.readable_by(*job_user):
                    raise InputUnavailable(NOT_READABLE)
                version = tuple(f.fingerprint.as_list())
                if version != published.version and f.sha256() != published.sha256:
                    raise InputModified(CHANGED)
                return PreparedInput(Path(published.location), version)
        except (FileRefused, OSError):
            raise InputUnavailable(GONE) from None

    def unchanged(self, published: PublishedInput, prepared: PreparedInput) -> bool:
        try:
            with opened(published.location) as f:
                return tuple(f.fingerprint.as_list()) == prepared.version
        except (FileRefused, OSError):
            return False

    @contextlib.contextmanager
    def open(self, location: str) -> Iterator[BinaryIO]:
        try:
            with opened(location) as f:
                stream = _stream(f)
        except (FileRefused, OSError):
            raise InputUnavailable(GONE) from None
        with stream:
            yield stream


class LocalResults:
    """Results as files under ``root``: the key ``a/b/c`` is the file ``root/a/b/c``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key_parts(key))

    def local_path(self, key: str) -> Path:
        """The file that holds ``key``, for a caller on this host that links rather than
        copies it (written once); it may not exist."""
        return self._path(key)

    def put(self, key: str, source: BinaryIO, *, limit: int | None = None) -> StoredObject:
        """Store what ``source`` yields. An OSError reading ``source`` is the caller's and
        propagates as it is; a failure of this store is a StorageError."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".part-", dir=path.parent)
            # mkstemp makes the file 0600: a result linked into a derived asset is an input
            # of later jobs, whose user must read it as it reads any published file
            os.fchmod(fd, 0o644)
        except OSError as e:
            raise StorageError(e.strerror or "the result could not be stored") from None
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while limit is None or size < limit:
                    chunk = source.read(CHUNK if limit is None else min(CHUNK, limit - size))
                    if not chunk:
                        break
                    digest.update(chunk)
                    try:
                        out.write(chunk)
                    except OSError as e:
                        raise StorageError(e.strerror or "the result could not be stored") from None
                    size += len(chunk)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return StoredObject(key, size, digest.hexdigest())

    def open(self, key: str) -> BinaryIO:
        try:
            fd = os.open(self._path(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            raise ObjectNotFound("no result is stored under this key") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ObjectNotFound("no result is stored under this key")
        return os.fdopen(fd, "rb")

    def stat(self, key: str) -> StoredObject:
        digest = hashlib.sha256()
        size = 0
        with self.open(key) as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return StoredObject(key, size, digest.hexdigest())

    def delete(self, prefix: str) -> None:
        path = self._path(prefix)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
