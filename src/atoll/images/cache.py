"""Unpacked images on disk, one directory per digest, under a size cap.

::

    root/
      entries/<hex>/rootfs/       an image's tree, complete (renamed in whole when built)
      entries/<hex>/image.json    its size, configuration and manifest digest
      locks/<hex>.lock            held shared while a job uses the image, exclusive to build
                                  or evict it
      cache.lock                  held while the cache's total is counted and room made
      work/                       builds in progress and trees being deleted

Two processes (or threads) asking for the same image build it once: the second waits on the
image's lock, then finds it done. A tree appears only by an atomic rename of a finished build,
so a crash leaves at most a stale directory under ``work/``, removed by the next build of the
same digest. The least recently used images not in use are evicted to make room.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from atoll.images.errors import CacheFull, ImageTooLarge
from atoll.images.reference import is_digest
from atoll.images.unpack import remove_tree


@dataclass(frozen=True)
class CachedImage:
    """An unpacked image, held in use while its ``acquire`` block runs."""

    digest: str
    rootfs: Path
    size: int
    info: dict[str, Any]


#: builds an image into a fresh directory: ``build(work_dir, max_bytes)`` returns the tree's
#: path (inside work_dir), its size and what to keep in image.json
Build = Callable[[Path, int], tuple[Path, int, dict[str, Any]]]


class ImageCache:
    """Unpacked images keyed by digest, at most ``max_bytes`` in all."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        for sub in ("entries", "locks", "work"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    @contextmanager
    def acquire(self, digest: str, build: Build) -> Iterator[CachedImage]:
        """The image ``digest``, built by ``build`` unless cached; it is not evicted while the
        block runs."""
        if not is_digest(digest):
            raise ValueError("not a sha256 digest")
        key = digest.partition(":")[2]
        entry = self.root / "entries" / key
        with open(self.root / "locks" / f"{key}.lock", "a+b") as lock:
            while True:
                fcntl.flock(lock, fcntl.LOCK_SH)
                if (entry / "image.json").exists():
                    break
                fcntl.flock(lock, fcntl.LOCK_UN)
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not (entry / "image.json").exists():
                    self._build(key, entry, build)
                # not atomic: an eviction may slip in, so look again once shared
                fcntl.flock(lock, fcntl.LOCK_SH)
                if (entry / "image.json").exists():
                    break
                fcntl.flock(lock, fcntl.LOCK_UN)
            info = json.loads((entry / "image.json").read_text())
            now = time.time()
            os.utime(entry / "image.json", (now, now))
            try:
                yield CachedImage(digest, entry / "rootfs", int(info["size"]), info)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def reserve(self, size: int, digest: str) -> None:
        """Evict images not in use until ``size`` more bytes fit (a build calls this with its
        bound before it writes, so the disk never holds much more than the cap)."""
        with self._locked():
            self._make_room(size, keep=digest.partition(":")[2])

    def contains(self, digest: str) -> bool:
        return (self.root / "entries" / digest.partition(":")[2] / "image.json").exists()

    def total_bytes(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def _build(self, key: str, entry: Path, build: Build) -> None:
        work_root = self.root / "work"
        for stale in work_root.glob(f"{key}.*"):
            remove_tree(stale)  # a crashed build of this digest: we hold its lock now
        work = work_root / f"{key}.{os.getpid()}.{secrets.token_hex(4)}"
        work.mkdir()
        try:
            tree, size, info = build(work, self.max_bytes)
            with self._locked():
                self._make_room(size, keep=key)
                final = work / "entry"
                final.mkdir()
                tree.rename(final / "rootfs")
                (final / "image.json").write_text(json.dumps({**info, "size": size}))
                final.rename(entry)
        finally:
            remove_tree(work)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / "cache.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _entries(self) -> list[tuple[str, int, float]]:
        """(key, size, last use) of each complete image."""
        found = []
        for entry in (self.root / "entries").iterdir():
            with suppress(OSError, ValueError, KeyError):
                marker = entry / "image.json"
                size = int(json.loads(marker.read_text())["size"])
                found.append((entry.name, size, marker.stat().st_mtime))
        return found

    def _make_room(self, size: int, keep: str) -> None:
        if size > self.max_bytes:
            raise ImageTooLarge("the unpacked image exceeds the image cache's size cap")
        entries = sorted(self._entries(), key=lambda e: e[2])
        excess = sum(e[1] for e in entries) + size - self.max_bytes
        if excess <= 0:
            return
        # lock the least recently used images not in use until enough would go, and only then
        # delete them: an image that cannot fit now costs no other image its place
        chosen: list[tuple[str, IO[bytes]]] = []
        try:
            for key, entry_size, _ in entries:
                if excess <= 0:
                    break
                if key == keep:
                    continue
                lock = open(self.root / "locks" / f"{key}.lock", "a+b")  # noqa: SIM115
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    lock.close()  # in use
                    continue
                chosen.append((key, lock))
                excess -= entry_size
            if excess > 0:
                raise CacheFull("the image cache is full of images in use")
            trash: list[Path] = []
            for key, _ in chosen:
                target = self.root / "work" / f"evicted.{key}.{secrets.token_hex(4)}"
                with suppress(FileNotFoundError):
                    (self.root / "entries" / key).rename(target)
                    trash.append(target)
        finally:
            for _, held in chosen:
                held.close()
        for target in trash:
            remove_tree(target)
