"""Size-capped tmpfs mounts for a job's outputs and logs, bind mounts into a job's staging
directory, and reading the mount table.

The mounts are made with mount(2) through libc rather than by running ``mount``: two extra
processes per job would cost more than the whole sandbox start.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 0x2

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MOUNTINFO = Path("/proc/self/mountinfo")

_libc = ctypes.CDLL(None, use_errno=True)
_mount = _libc.mount
_mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_mount.restype = ctypes.c_int
_umount2 = _libc.umount2
_umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_umount2.restype = ctypes.c_int


@dataclass(frozen=True)
class MountEntry:
    mount_point: str
    fstype: str
    source: str
    super_options: tuple[str, ...]


def tmpfs_options(
    size_bytes: int, nr_inodes: int, mode: int = 0o700, owner: tuple[int, int] | None = None
) -> str:
    # tmpfs reads 0 as "no limit", so a zero cap must still become a real (one page) cap.
    size = max(size_bytes, PAGE_SIZE)
    inodes = max(nr_inodes, 2)
    options = f"size={size},nr_inodes={inodes},mode={mode:o}"
    if owner is not None:
        options += f",uid={owner[0]},gid={owner[1]}"
    return options


def _call_mount(
    source: bytes | None, target: Path, fstype: bytes | None, flags: int, data: bytes | None
) -> None:
    if _mount(source, os.fsencode(target), fstype, flags, data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(target))


def mount_tmpfs(
    source: str,
    target: Path,
    size_bytes: int,
    nr_inodes: int,
    *,
    mode: int = 0o700,
    owner: tuple[int, int] | None = None,
) -> None:
    """Mount a capped tmpfs on ``target``, its root owned by ``owner`` (uid, gid) if given;
    raises OSError."""
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    data = tmpfs_options(size_bytes, nr_inodes, mode, owner)
    _call_mount(source.encode(), target, b"tmpfs", flags, data.encode())


def bind(source: str | Path, target: Path, *, recursive: bool = True) -> None:
    """Bind ``source`` (with everything mounted below it, if ``recursive``) on ``target``;
    raises OSError."""
    flags = MS_BIND | (MS_REC if recursive else 0)
    _call_mount(os.fsencode(source), target, None, flags, None)


def mount_overlay(options: str, target: Path) -> None:
    """Mount a read-only overlay with ``options`` (its layers) on ``target``; raises OSError.
    Its source is a fixed name: the mount table must not tell anything about the layers."""
    _call_mount(b"atoll-input", target, b"overlay", MS_NOSUID | MS_NODEV, options.encode())


def make_private(target: Path) -> None:
    """Stop mount events at ``target`` from propagating to or from other mount namespaces;
    raises OSError."""
    _call_mount(None, target, None, MS_PRIVATE, None)


def unmount(target: str | Path) -> None:
    """Detach the mount on ``target``; raises OSError."""
    # A lazy detach still frees the tmpfs once the last open file in it is closed, and it
    # cannot fail because the engine briefly holds a file there.
    if _umount2(os.fsencode(target), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(target))


def _unescape(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in paths as \ooo octal escapes.
    if "\\" not in field:
        return field
    out: list[str] = []
    i = 0
    while i < len(field):
        c = field[i]
        if c == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[MountEntry]:
    entries: list[MountEntry] = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < sep + 4:
            continue
        entries.append(
            MountEntry(
                mount_point=_unescape(fields[4]),
                fstype=fields[sep + 1],
                source=_unescape(fields[sep + 2]),
                super_options=tuple(fields[sep + 3].split(",")),
            )
        )
    return entries


def read_mounts() -> list[MountEntry]:
    return parse_mountinfo(MOUNTINFO.read_text())


def is_mount_point(path: Path) -> bool:
    """Whether something is mounted on ``path``. Unlike ``os.path.ismount`` this also sees a
    directory bound onto itself, which has the device of its parent."""
    target = os.path.realpath(path)
    return any(m.mount_point == target for m in read_mounts())


def marked_mounts(marker: str) -> list[MountEntry]:
    """The tmpfs mounts whose source is ``marker``, deepest first so they can be unmounted in
    that order."""
    found = [m for m in read_mounts() if m.fstype == "tmpfs" and m.source == marker]
    return sorted(found, key=lambda m: m.mount_point.count("/"), reverse=True)
