"""The storage seam: where a job's dataset inputs come from and where its results go.

Two roles, each a protocol a backend implements:

- :class:`InputSource` turns a published dataset location into something an executor can
  mount (a local path), checks that it still holds the published bytes, and streams code
  files the engine copies into a job;
- :class:`ResultStore` keeps a job's result files under keys such as ``<job>/results/<n>``,
  written and read as streams (never whole in memory), each with its size and SHA-256.

The local backend (:mod:`atoll.storage.local`) reads the provider's own disk; remote sources
(HTTP, S3) and a remote result store implement the same protocols. Errors are the types of
:mod:`atoll.storage.errors`, with messages that name no location.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from atoll.storage.errors import InvalidKey

#: bytes read or written at a time by every backend
CHUNK = 1 << 20

#: told (bytes so far, expected size or None) while an input is fetched
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class StoredObject:
    """A stored result: its key, size in bytes and SHA-256 (hex)."""

    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class PublishedInput:
    """A dataset file as it was published: where it is, its SHA-256, and the version token
    the source gave it when that checksum was last confirmed (for a local file: size,
    mtime_ns, ctime_ns, inode, device)."""

    location: str
    sha256: str
    version: tuple[int, ...]


@dataclass(frozen=True)
class PreparedInput:
    """A dataset file ready for a job: ``path`` is a local file an executor can mount
    read-only (never shown to a consumer), ``version`` what it was when it was checked; the
    executor refuses to mount a file whose version moved."""

    path: Path
    version: tuple[int, ...]


class InputSource(Protocol):
    """Where dataset inputs come from."""

    def prepare(
        self,
        published: PublishedInput,
        job_user: tuple[int, int] | None,
        progress: Progress | None = None,
    ) -> PreparedInput:
        """Make the input available as a local path holding exactly the published bytes
        (rehashed when its version moved); with ``job_user`` (uid, gid), also reachable by
        that user; ``progress`` hears how a fetch goes. Raises
        :class:`~atoll.storage.errors.InputModified` or
        :class:`~atoll.storage.errors.InputUnavailable`."""

    def unchanged(self, published: PublishedInput, prepared: PreparedInput) -> bool:
        """Whether the input is still what it was when it was prepared."""

    def open(self, location: str) -> AbstractContextManager[BinaryIO]:
        """The bytes at ``location`` as a stream. Raises InputUnavailable."""


class ResultStore(Protocol):
    """Where results go and are fetched from."""

    def put(self, key: str, source: BinaryIO, *, limit: int | None = None) -> StoredObject:
        """Store what ``source`` yields (at most ``limit`` bytes) under ``key``, replacing
        what was there; the object appears whole or not at all. Raises StorageError."""

    def open(self, key: str) -> BinaryIO:
        """The stored bytes as a stream the caller closes. Raises ObjectNotFound."""

    def stat(self, key: str) -> StoredObject:
        """Size and SHA-256 of the stored object. Raises ObjectNotFound."""

    def delete(self, prefix: str) -> None:
        """Remove every object under ``prefix`` (a key or a key's leading parts)."""


def key_parts(key: str) -> list[str]:
    """The parts of a result key; InvalidKey unless each is a plain, non-empty name."""
    parts = key.split("/")
    if any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise InvalidKey("a result key must be plain names separated by '/'")
    return parts
