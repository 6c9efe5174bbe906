"""Reading every layer before anything is unpacked, to refuse hostile ones by name.

The unpacker (umoci) already resolves every path inside the image's directory; this pass is
there so that a hostile image fails as what it is, with its own error, instead of being
quietly clamped, and so that decompression bombs stop at a byte cap before any disk is written.
It follows the layers in order, as the unpacker will, keeping the symbolic links and files they
leave, so an entry written through a link made by an earlier layer is seen too.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from atoll.images.errors import (
    AbsolutePathEntry,
    DeviceEntry,
    DigestMismatch,
    HardLinkEscape,
    ImageTooLarge,
    MalformedLayer,
    ParentPathEntry,
    SymlinkTraversal,
    UnsupportedImage,
    WhiteoutEscape,
)
from atoll.images.pull import OCI_LAYER_GZIP, OCI_LAYER_TAR

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
#: bytes kept of what tarfile has read, to check what follows the end of the archive
_TAIL = 1 << 20


@dataclass(frozen=True)
class ScanLimits:
    """Caps over the whole image, all layers together."""

    #: bytes of the layers once decompressed, and of the files they declare
    max_unpacked_bytes: int = 8 << 30
    max_entries: int = 500_000


@dataclass
class _State:
    symlinks: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    #: paths written by the layer being read (an opaque whiteout hides only lower layers)
    layer_paths: set[str] = field(default_factory=set)


class _Counted:
    """A read-only stream that hashes, counts and caps what passes through it."""

    def __init__(self, raw: IO[bytes], budget: Callable[[int], None]) -> None:
        self._raw = raw
        self._budget = budget
        self.hasher = hashlib.sha256()
        self.position = 0
        self.tail = bytearray()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size if size > 0 else 1 << 20)
        if data:
            self._budget(len(data))
            self.hasher.update(data)
            self.position += len(data)
            self.tail += data
            if len(self.tail) > 2 * _TAIL:
                del self.tail[: len(self.tail) - _TAIL]
        return data

    def since(self, offset: int) -> bytes | None:
        """The bytes read from ``offset`` on, if still kept."""
        start = len(self.tail) - (self.position - offset)
        return bytes(self.tail[start:]) if start >= 0 else None


class LayerScanner:
    """Scans an image's layers in order; raises the error of the first hostile entry."""

    def __init__(self, limits: ScanLimits | None = None) -> None:
        self._limits = limits or ScanLimits()
        self._state = _State()
        self.decompressed_bytes = 0
        self.declared_bytes = 0
        self.entries = 0

    def scan(self, blob: Path, media_type: str, diff_id: str) -> None:
        """Read one layer blob (already verified against its digest) and check it, and that it
        decompresses to ``diff_id``."""
        self._state.layer_paths = set()
        with blob.open("rb") as raw:
            if media_type == OCI_LAYER_GZIP:
                stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
            elif media_type == OCI_LAYER_TAR:
                stream = raw
            else:
                raise UnsupportedImage("the image has a layer of an unsupported media type")
            counted = _Counted(stream, self._spend)
            try:
                end = self._entries(counted)
                self._trailer(counted, end)
            except (tarfile.TarError, EOFError, OSError, zlib.error):
                raise MalformedLayer("a layer of the image is not a readable tar archive") from None
        if "sha256:" + counted.hasher.hexdigest() != diff_id:
            raise DigestMismatch("a layer of the image does not decompress to its diff_id")

    def _spend(self, n: int) -> None:
        self.decompressed_bytes += n
        if self.decompressed_bytes > self._limits.max_unpacked_bytes:
            raise ImageTooLarge("the image's layers decompress beyond the unpacked size cap")

    def _entries(self, counted: _Counted) -> int:
        with tarfile.open(fileobj=counted, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                self._check(member)
            return int(tar.offset)

    def _trailer(self, counted: _Counted, end: int) -> None:
        # whatever follows the last entry must be the zero blocks that end the archive: a
        # reader that stopped early here while the unpacker read on would unpack unchecked data
        seen = counted.since(end)
        if seen is None or seen.strip(b"\0"):
            raise MalformedLayer("a layer of the image has data after its end")
        while chunk := counted.read(1 << 20):
            if chunk.strip(b"\0"):
                raise MalformedLayer("a layer of the image has data after its end")

    def _check(self, member: tarfile.TarInfo) -> None:
        self.entries += 1
        if self.entries > self._limits.max_entries:
            raise ImageTooLarge("the image holds more entries than its cap")
        name = member.name
        parts = _parts(name)
        basename = parts[-1] if parts else ""
        if basename.startswith(WHITEOUT):
            self._whiteout(name, parts)
            return
        if name.startswith("/"):
            raise AbsolutePathEntry("a layer of the image holds an absolute path")
        if ".." in parts:
            raise ParentPathEntry("a layer of the image holds a path with '..'")
        if not parts and not member.isdir():
            raise ParentPathEntry("a layer of the image replaces its root")
        path = "/".join(parts)
        self._no_link_above(parts, SymlinkTraversal, "an entry is written through a symbolic link")
        if member.ischr() or member.isblk() or member.isfifo():
            raise DeviceEntry("a layer of the image holds a device node or FIFO")
        if member.issparse():
            raise MalformedLayer("a layer of the image holds a sparse file")
        if member.islnk():
            self._hard_link(member)
        elif not (member.isreg() or member.isdir() or member.issym()):
            raise MalformedLayer("a layer of the image holds an entry of an unknown kind")
        if member.isreg():
            self.declared_bytes += member.size
            if self.declared_bytes > self._limits.max_unpacked_bytes:
                raise ImageTooLarge("the image's files exceed the unpacked size cap")
        state = self._state
        state.layer_paths.add(path)
        if member.issym():
            state.symlinks.add(path)
            state.files.discard(path)
        else:
            state.symlinks.discard(path)
            if member.isreg() or member.islnk():
                state.files.add(path)

    def _hard_link(self, member: tarfile.TarInfo) -> None:
        target = member.linkname
        parts = _parts(target)
        if target.startswith("/") or ".." in parts or not parts:
            raise HardLinkEscape("a hard link in the image points out of its root")
        self._no_link_above(parts, HardLinkEscape, "a hard link points through a symbolic link")
        if "/".join(parts) not in self._state.files:
            raise HardLinkEscape("a hard link in the image points to no file of the image")

    def _whiteout(self, name: str, parts: list[str]) -> None:
        hidden = parts[-1][len(WHITEOUT) :]
        if (
            name.startswith("/")
            or ".." in parts
            or hidden in ("", ".", "..")
            or (hidden.startswith(WHITEOUT) and parts[-1] != OPAQUE)
        ):
            raise WhiteoutEscape("a whiteout in the image is aimed out of its place")
        self._no_link_above(parts, WhiteoutEscape, "a whiteout is aimed through a symbolic link")
        state = self._state
        directory = "/".join(parts[:-1])
        if parts[-1] == OPAQUE:
            prefix = directory + "/" if directory else ""
            lower = {p for p in state.symlinks | state.files if p.startswith(prefix)}
            gone = lower - state.layer_paths
        else:
            target = f"{directory}/{hidden}" if directory else hidden
            gone = {
                p for p in state.symlinks | state.files if p == target or p.startswith(target + "/")
            }
        state.symlinks -= gone
        state.files -= gone

    def _no_link_above(self, parts: list[str], error: type[Exception], message: str) -> None:
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in self._state.symlinks:
                raise error(message)


def _parts(name: str) -> list[str]:
    return [p for p in name.split("/") if p not in ("", ".")]
