"""What every storage backend must do, as test classes a backend's tests subclass.

A backend's test module subclasses :class:`ResultStoreConformance` and
:class:`InputSourceConformance`, providing the fixtures each names (a store or source, a way
to place a dataset file in it, and a string that must never appear in an error: the host
path, bucket or URL the backend keeps things at). Every test here then runs on it.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from typing import BinaryIO

import pytest

from atoll.storage import (
    InputModified,
    InputSource,
    InputUnavailable,
    InvalidKey,
    ObjectNotFound,
    PublishedInput,
    ResultStore,
    StorageError,
)

MIB = 1024**2
#: no read of a stream may ask for more than this at once: nothing is held whole in memory
MAX_READ = 8 * MIB


class ChunkedSource(io.RawIOBase):
    """``size`` pseudo-random bytes, refusing any read that would hold them whole."""

    def __init__(self, size: int, fail_after: int | None = None) -> None:
        self.data = os.urandom(size)
        self.pos = 0
        self.fail_after = fail_after
        self.largest_read = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0 or n > MAX_READ:
            raise AssertionError(f"a read of {n} bytes: the whole stream at once")
        self.largest_read = max(self.largest_read, n)
        if self.fail_after is not None and self.pos >= self.fail_after:
            raise OSError(5, "the source broke")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk


def read_all(stream: BinaryIO) -> bytes:
    out = bytearray()
    while chunk := stream.read(MIB):
        out += chunk
    return bytes(out)


class ResultStoreConformance:
    """Fixtures to provide: ``store`` (an empty ResultStore) and ``secret`` (where it keeps
    things: must appear in no error)."""

    def test_put_then_open_gives_the_bytes_size_and_sha256(self, store: ResultStore) -> None:
        stored = store.put("job/results/0", io.BytesIO(b"hello"))
        assert (stored.key, stored.size) == ("job/results/0", 5)
        assert stored.sha256 == hashlib.sha256(b"hello").hexdigest()
        with store.open("job/results/0") as stream:
            assert read_all(stream) == b"hello"
        assert store.stat("job/results/0") == stored

    def test_a_large_object_streams_in_and_out(self, store: ResultStore) -> None:
        source = ChunkedSource(3 * MIB + 17)
        stored = store.put("job/results/big", source)  # type: ignore[arg-type]
        assert stored.size == 3 * MIB + 17
        assert stored.sha256 == hashlib.sha256(source.data).hexdigest()
        with store.open("job/results/big") as stream:
            digest = hashlib.sha256()
            while chunk := stream.read(MIB):
                assert len(chunk) <= MIB
                digest.update(chunk)
        assert digest.hexdigest() == stored.sha256

    def test_put_stores_at_most_the_limit(self, store: ResultStore) -> None:
        stored = store.put("k", io.BytesIO(b"0123456789"), limit=4)
        assert stored.size == 4
        with store.open("k") as stream:
            assert read_all(stream) == b"0123"

    def test_an_empty_object(self, store: ResultStore) -> None:
        stored = store.put("empty", io.BytesIO(b""))
        assert stored.size == 0 and stored.sha256 == hashlib.sha256().hexdigest()
        with store.open("empty") as stream:
            assert read_all(stream) == b""

    def test_put_replaces(self, store: ResultStore) -> None:
        store.put("k", io.BytesIO(b"first"))
        store.put("k", io.BytesIO(b"second"))
        with store.open("k") as stream:
            assert read_all(stream) == b"second"

    def test_a_failed_put_leaves_what_was_there(self, store: ResultStore) -> None:
        store.put("k", io.BytesIO(b"whole"))
        broken = ChunkedSource(4 * MIB, fail_after=MIB)
        with pytest.raises(OSError):
            store.put("k", broken)  # type: ignore[arg-type]
        with store.open("k") as stream:
            assert read_all(stream) == b"whole"
        with pytest.raises(OSError):
            store.put("fresh", ChunkedSource(4 * MIB, fail_after=MIB))  # type: ignore[arg-type]
        with pytest.raises(ObjectNotFound):
            store.open("fresh")

    def test_missing_objects_are_not_found_without_a_location(
        self, store: ResultStore, secret: str
    ) -> None:
        for call in (store.open, store.stat):
            with pytest.raises(ObjectNotFound) as info:
                call("job/results/7")
            assert secret not in str(info.value)
            assert isinstance(info.value, StorageError)

    @pytest.mark.parametrize("key", ["", "/abs", "a//b", "../up", "a/../b", "a/.", "a/b/"])
    def test_keys_that_are_not_plain_names_are_refused(self, store: ResultStore, key: str) -> None:
        with pytest.raises(InvalidKey):
            store.put(key, io.BytesIO(b"x"))
        with pytest.raises(InvalidKey):
            store.open(key)

    def test_delete_removes_everything_under_a_prefix_and_nothing_else(
        self, store: ResultStore
    ) -> None:
        for key in ("a/results/0", "a/results/1", "ab/results/0"):
            store.put(key, io.BytesIO(key.encode()))
        store.delete("a")
        for key in ("a/results/0", "a/results/1"):
            with pytest.raises(ObjectNotFound):
                store.open(key)
        with store.open("ab/results/0") as stream:
            assert read_all(stream) == b"ab/results/0"
        store.delete("a")  # idempotent
        store.delete("never/there")


class InputSourceConformance:
    """Fixtures to provide: ``source`` (an InputSource), ``place`` (puts bytes in the source
    and returns the location of a new dataset file, or rewrites the one at a location given
    as its second argument), ``remove`` (takes a file away) and ``secret``."""

    @staticmethod
    def _published(
        source: InputSource, location: str, data: bytes
    ) -> tuple[PublishedInput, tuple[int, ...]]:
        """The file as a provider would have recorded it at publish time: its checksum and
        the version the source reports once it has confirmed it."""
        sha = hashlib.sha256(data).hexdigest()
        version = source.prepare(PublishedInput(location, sha, ()), None).version
        return PublishedInput(location, sha, version), version

    def test_a_prepared_input_is_a_local_file_with_the_published_bytes(
        self, source: InputSource, place: Callable[..., str]
    ) -> None:
        location = place(b"rows\n")
        published, version = self._published(source, location, b"rows\n")
        prepared = source.prepare(published, None)
        assert prepared.version == version
        assert prepared.path.read_bytes() == b"rows\n"
        assert source.unchanged(published, prepared)

    def test_a_new_version_with_the_same_bytes_is_accepted(
        self, source: InputSource, place: Callable[..., str]
    ) -> None:
        location = place(b"same")
        published, _ = self._published(source, location, b"same")
        stale = PublishedInput(location, published.sha256, (0, 0, 0, 0, 0))
        assert source.prepare(stale, None).path.read_bytes() == b"same"

    def test_changed_bytes_are_refused_without_a_location(
        self, source: InputSource, place: Callable[..., str], secret: str
    ) -> None:
        location = place(b"before")
        published, _ = self._published(source, location, b"before")
        place(b"after!", location)
        with pytest.raises(InputModified) as info:
            source.prepare(published, None)
        assert secret not in str(info.value) and location not in str(info.value)

    def test_a_change_after_preparing_is_noticed(
        self, source: InputSource, place: Callable[..., str]
    ) -> None:
        location = place(b"before")
        published, _ = self._published(source, location, b"before")
        prepared = source.prepare(published, None)
        place(b"after!", location)
        assert not source.unchanged(published, prepared)

    def test_a_missing_input_is_unavailable_without_a_location(
        self,
        source: InputSource,
        place: Callable[..., str],
        remove: Callable[[str], None],
        secret: str,
    ) -> None:
        location = place(b"gone soon")
        published, _ = self._published(source, location, b"gone soon")
        remove(location)
        with pytest.raises(InputUnavailable) as info:
            source.prepare(published, None)
        assert not isinstance(info.value, InputModified)
        assert secret not in str(info.value) and location not in str(info.value)
        with pytest.raises(InputUnavailable), source.open(location):
            pass

    def test_open_streams_the_bytes(self, source: InputSource, place: Callable[..., str]) -> None:
        data = os.urandom(2 * MIB + 3)
        location = place(data)
        with source.open(location) as stream:
            assert read_all(stream) == data
