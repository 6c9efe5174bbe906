"""The content-addressed cache of fetched dataset files: ``<root>/<sha256>``, written only
whole and verified.

A file is streamed into ``<root>/.part-*`` while it is hashed, and renamed to its checksum
only when the bytes are the expected ones; any failure removes the part, so the cache never
holds a file that is not what its name says. Files are ``0644`` (a job's own user reads them
through its read-only mount) and never touched once in place: their status is what a mounted
input is checked against, so the time of last use is kept beside them (``<root>/.used/``).
Past ``max_bytes`` the least recently used go, except those used within ``grace_seconds``
(a job may be about to mount them).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from atoll.storage.errors import InputModified, SourceLimit, StorageError
from atoll.storage.interface import CHUNK, Progress

CHANGED = "has changed since it was published"


class Readable(Protocol):
    def read(self, amt: int) -> bytes: ...


class SourceCache:
    def __init__(self, root: Path, max_bytes: int, grace_seconds: float = 300.0) -> None:
        # fully resolved: a mounted input is reached without following links
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.used = self.root / ".used"
        self.seen = self.root / ".seen"
        for d in (self.used, self.seen):
            d.mkdir(exist_ok=True)
        for d in (self.root, self.used, self.seen):
            os.chmod(d, 0o755)
        self.max_bytes = max_bytes
        self.grace_seconds = grace_seconds
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        for leftover in self.root.glob(".part-*"):  # an interrupted fetch of a past run
            with contextlib.suppress(OSError):
                leftover.unlink()

    @contextlib.contextmanager
    def locked(self, sha256: str) -> Iterator[None]:
        """Held while one file is looked up or fetched: two jobs on one source fetch it once."""
        with self._guard:
            lock = self._locks.setdefault(sha256, threading.Lock())
        with lock:
            yield

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise StorageError("a published checksum is not a SHA-256")
        return self.root / sha256

    def lookup(self, sha256: str) -> Path | None:
        """The cached file, marked as used now; None if it is not there."""
        path = self.path(sha256)
        if not path.is_file() or path.is_symlink():
            return None
        self._mark_used(sha256)
        return path

    def add(
        self, source: Readable, size: int | None = None, progress: Progress | None = None
    ) -> tuple[str, int]:
        """Stream ``source`` into the cache under the checksum of what it gives (a file
        being published); its checksum and size. SourceLimit past the cache's size."""
        return self._write(None, source, size, progress)

    def fill(
        self,
        sha256: str,
        source: Readable,
        size: int | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """Stream ``source`` into the cache under ``sha256``; InputModified if its bytes hash
        otherwise, SourceLimit past the cache's size. Nothing is left behind on failure."""
        self.path(sha256)
        self._write(sha256, source, size, progress)
        return self.path(sha256)

    def _write(
        self,
        expected: str | None,
        source: Readable,
        size: int | None,
        progress: Progress | None,
    ) -> tuple[str, int]:
        if size is not None and size > self.max_bytes:
            raise SourceLimit("is larger than the cache the operator allows")
        fd, tmp = tempfile.mkstemp(prefix=".part-", dir=self.root)
        try:
            digest = hashlib.sha256()
            done = 0
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(CHUNK):
                    done += len(chunk)
                    if done > self.max_bytes:
                        raise SourceLimit("is larger than the cache the operator allows")
                    digest.update(chunk)
                    out.write(chunk)
                    if progress is not None:
                        progress(done, size)
                out.flush()
                os.fsync(out.fileno())
            sha256 = digest.hexdigest()
            if expected is not None and sha256 != expected:
                raise InputModified(CHANGED)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path(sha256))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._mark_used(sha256)
        self.evict(keep=sha256)
        return sha256, done

    def _mark_used(self, sha256: str) -> None:
        marker = self.used / sha256
        marker.touch()
        os.utime(marker)

    def _seen_path(self, sha256: str, source: str) -> Path:
        return self.seen / f"{sha256}-{hashlib.sha256(source.encode()).hexdigest()[:32]}"

    def remember(self, sha256: str, source: str, validator: str) -> None:
        """Note what ``source`` (a location) said its version was when it gave these bytes."""
        tmp = self._seen_path(sha256, source).with_suffix(".tmp")
        tmp.write_text(validator)
        tmp.replace(self._seen_path(sha256, source))

    def remembered(self, sha256: str, source: str) -> str:
        """The version :meth:`remember` noted, or ""."""
        try:
            return self._seen_path(sha256, source).read_text()
        except OSError:
            return ""

    def last_used(self, sha256: str) -> float:
        try:
            return (self.used / sha256).stat().st_mtime
        except OSError:
            return 0.0

    def entries(self) -> list[tuple[str, int]]:
        """(checksum, size) of every cached file."""
        out = []
        for entry in os.scandir(self.root):
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            out.append((entry.name, entry.stat(follow_symlinks=False).st_size))
        return out

    def size(self) -> int:
        return sum(size for _, size in self.entries())

    def evict(self, keep: str = "") -> None:
        """Remove the least recently used files until the cache fits its size."""
        entries = self.entries()
        total = sum(size for _, size in entries)
        now = time.time()
        for sha, size in sorted(entries, key=lambda e: self.last_used(e[0])):
            if total <= self.max_bytes:
                break
            if sha == keep or now - self.last_used(sha) < self.grace_seconds:
                continue
            with contextlib.suppress(OSError):
                (self.root / sha).unlink()
                total -= size
            with contextlib.suppress(OSError):
                (self.used / sha).unlink()
            for seen in self.seen.glob(f"{sha}-*"):
                with contextlib.suppress(OSError):
                    seen.unlink()
