"""Turning what a job left in ``/data/outputs`` and ``/data/logs`` into published results.

The job's tree is untrusted: its names, its shape and its sizes are the job's choice. So it is
measured as it would land on the provider's disk before anything is copied there, and
published only whole and within the job's limits:

- sizes count whole blocks (``max(st_blocks * 512, st_size rounded up to a block)``): a sparse
  file is copied out dense, and a 1-byte file still takes a block, so neither holes nor a
  flood of tiny files takes more than the cap on the provider's disk;
- a file with more than one name (a hard link) is not published: each of its names would be a
  full copy on the provider's disk;
- links and special files are never followed or published;
- a name that is not UTF-8, or longer than the cap, is not published (its directory
  is not entered), so every name that reaches the store, the API and a download header is
  valid text of bounded length, and no path handled here comes near PATH_MAX;
- past the cap on the number of files, or on the bytes, the outputs are refused as a whole:
  the job broke a limit, and only its log is published.

What was left out is reported as counts, never as names, so that the status text stays short
whatever the job did.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from atoll.models.job import ResultFile
from atoll.storage import ResultStore, StoredObject

#: the unit of allocation assumed for the provider's disk
BLOCK = 4096
#: default caps; the provider's settings override them
DEFAULT_MAX_FILES = 1000
DEFAULT_MAX_NAME_BYTES = 255

ALGORITHM_LOG = "algorithm.log"
LOGS_PREFIX = "logs/"

SKIP_SPECIAL = "links or special files"
SKIP_HARD_LINK = "hard links"
SKIP_NAME = "names that are not UTF-8"
SKIP_LONG = "names longer than {cap} bytes"
SKIP_CHANGED = "files that changed while being published"


@dataclass(frozen=True)
class OutputRules:
    output_bytes: int
    log_bytes: int
    max_files: int = DEFAULT_MAX_FILES
    max_name_bytes: int = DEFAULT_MAX_NAME_BYTES


@dataclass
class Published:
    results: list[ResultFile]
    #: what was left out, by reason
    skipped: Counter[str] = field(default_factory=Counter)
    #: why the outputs were refused as a whole (a limit the job broke); "" when published
    refused: str = ""

    def note(self) -> str:
        """A short addition to the status text: counts, never names."""
        parts = []
        if self.refused:
            parts.append(f"outputs not published: {self.refused}")
        total = sum(self.skipped.values())
        if total:
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
            parts.append(f"skipped {total} file{'s' if total != 1 else ''} ({reasons})")
        return "".join(f"; {p}" for p in parts)


def disk_size(st: os.stat_result) -> int:
    """What a copy of the file takes on the provider's disk, at the most."""
    dense = -(-st.st_size // BLOCK) * BLOCK
    return max(dense, st.st_blocks * 512)


def printable(name: str) -> bool:
    """Valid UTF-8 (no undecodable bytes). Control characters are kept: the name is data the
    consumer asked for, served with ``filename*`` and escaped wherever it is shown."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class _Found:
    rel: str
    dev: int
    ino: int
    size: int
    #: what its copy takes on the provider's disk
    disk: int


class _Tree:
    """The regular files under one top directory, walked through directory descriptors (no
    path is ever longer than the name cap, and no link is followed)."""

    def __init__(self, top_fd: int, rules: OutputRules, skipped: Counter[str]) -> None:
        self.top_fd = top_fd
        self.dev = os.fstat(top_fd).st_dev
        self.rules = rules
        self.skipped = skipped
        self.long = SKIP_LONG.format(cap=rules.max_name_bytes)

    def walk(self) -> Iterator[_Found]:
        yield from self._walk(self.top_fd, "")

    def _walk(self, dir_fd: int, prefix: str) -> Iterator[_Found]:
        with os.scandir(dir_fd) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            name = entry.name
            if not printable(name):
                self.skipped[SKIP_NAME] += 1
                continue
            rel = prefix + name
            if len(rel.encode()) > self.rules.max_name_bytes:
                self.skipped[self.long] += 1
                continue
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode) and st.st_dev == self.dev:
                try:
                    sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
                except OSError:
                    self.skipped[SKIP_SPECIAL] += 1
                    continue
                try:
                    yield from self._walk(sub, rel + "/")
                finally:
                    os.close(sub)
            elif not stat.S_ISREG(st.st_mode) or st.st_dev != self.dev:
                self.skipped[SKIP_SPECIAL] += 1
            elif st.st_nlink > 1:
                self.skipped[SKIP_HARD_LINK] += 1
            else:
                yield _Found(rel, st.st_dev, st.st_ino, st.st_size, disk_size(st))


def _open_dir(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None


def _human(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def result_key(job_id: str, index: int) -> str:
    """Where a job's result file ``index`` is kept in the result store."""
    return f"{job_id}/results/{index}"


def publish(
    outputs: Path,
    logs: Path,
    algorithm_log: Path,
    store: ResultStore,
    job_id: str,
    rules: OutputRules,
) -> Published:
    """Measure the job's outputs and logs, then store what may be published under
    :func:`result_key`, hashing it as it streams. Raises StorageError for a failure of the
    store, OSError for one of the provider's own disk, never for anything the job's tree
    holds."""
    skipped: Counter[str] = Counter()
    fds: list[int] = []
    try:
        found: list[tuple[int, str, _Found]] = []
        refused = ""
        for top, prefix, cap, what in (
            (outputs, "", rules.output_bytes, "outputs"),
            (logs, LOGS_PREFIX, rules.log_bytes, "log files"),
        ):
            fd = _open_dir(top)
            if fd is None:
                continue
            fds.append(fd)
            used = 0
            for f in _Tree(fd, rules, skipped).walk():
                found.append((fd, prefix, f))
                if len(found) > rules.max_files:
                    refused = f"the job left more than {rules.max_files} files"
                    break
                used += f.disk
                if used > cap:
                    refused = f"its {what} take more than {_human(cap)} on disk"
                    break
            if refused:
                break
        if refused:
            found = []
        published: list[ResultFile] = []

        def add(name: str, kind: str, copied: StoredObject | None) -> None:
            if copied is None:
                skipped[SKIP_CHANGED] += 1
                return
            digest, size = copied.sha256, copied.size
            published.append(
                ResultFile(
                    index=len(published), filename=name, filesize=size, type=kind, sha256=digest
                )
            )

        # outputs, then the job's stdout and stderr, then its log files: the order results
        # always had
        def key() -> str:
            return result_key(job_id, len(published))

        for fd, prefix, f in found:
            if not prefix:
                add(f.rel, "output", _copy(fd, f, store, key()))
        add(ALGORITHM_LOG, "algorithmLog", _copy_log(algorithm_log, store, key()))
        for fd, prefix, f in found:
            if prefix:
                add(prefix + f.rel, "algorithmLog", _copy(fd, f, store, key()))
        return Published(published, skipped, refused)
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def _copy(dir_fd: int, f: _Found, store: ResultStore, key: str) -> StoredObject | None:
    """Store at most the measured size of the file measured (same device and inode); None if
    it is no longer that file."""
    try:
        fd = os.open(f.rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fin:
        st = os.fstat(fin.fileno())
        if (st.st_dev, st.st_ino) != (f.dev, f.ino) or not stat.S_ISREG(st.st_mode):
            return None
        return store.put(key, fin, limit=f.size)


def _copy_log(src: Path, store: ResultStore, key: str) -> StoredObject:
    try:
        # O_NOFOLLOW: the engine wrote this file, but never trust a name to stay a file
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return store.put(key, io.BytesIO(b""))
    with os.fdopen(fd, "rb") as fin:
        return store.put(key, fin)
