"""Unpacking a verified, scanned image with umoci, then making the tree safe to serve.

umoci (``raw unpack --rootless``) applies the layers with their whiteouts, resolving every
path inside the target directory and never changing an owner. After it, the tree is walked once
without following any link: set-user-ID and set-group-ID bits are dropped (a Debian root has
``su`` and ``newgrp``; the image runs read-only and unprivileged, and keeps no such bit), any
device node is refused, and the size it takes is measured against the cap.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
from pathlib import Path

from atoll.images.errors import DeviceEntry, ImageTooLarge, UnpackFailed
from atoll.images.pull import LAYOUT_TAG

log = logging.getLogger(__name__)

UNPACK_TIMEOUT = 600.0
_PRIVILEGE_BITS = stat.S_ISUID | stat.S_ISGID


def find_umoci() -> str | None:
    """The umoci executable on PATH, or None."""
    return shutil.which("umoci")


def unpack(layout: Path, rootfs: Path, *, umoci: str | None = None) -> None:
    """Apply the layers of the image named LAYOUT_TAG in ``layout`` into ``rootfs`` (which
    must not exist yet)."""
    program = umoci or find_umoci()
    if program is None:
        raise UnpackFailed("the image unpacker (umoci) is not installed")
    command = [program, "raw", "unpack", "--rootless", "--image", f"{layout}:{LAYOUT_TAG}"]
    try:
        result = subprocess.run(
            [*command, str(rootfs)],
            capture_output=True,
            text=True,
            timeout=UNPACK_TIMEOUT,
            check=False,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"},
        )
    except subprocess.TimeoutExpired:
        raise UnpackFailed("the image unpacker timed out") from None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        log.warning("umoci refused an image: %s", lines[-1] if lines else result.returncode)
        raise UnpackFailed("the image unpacker refused the image")


def harden(rootfs: Path, max_bytes: int) -> int:
    """Drop set-ID bits, refuse device nodes and measure the tree (bytes on disk, each inode
    once); raises ImageTooLarge past ``max_bytes``. Links are never followed."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [rootfs]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                mode = info.st_mode
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                    raise DeviceEntry("a layer of the image holds a device node or FIFO")
                if stat.S_ISSOCK(mode):
                    raise DeviceEntry("a layer of the image holds a socket")
                key = (info.st_dev, info.st_ino)
                if key not in seen:
                    seen.add(key)
                    total += max(info.st_blocks * 512, 0)
                    if total > max_bytes:
                        raise ImageTooLarge("the unpacked image exceeds its size cap")
                if stat.S_ISLNK(mode):
                    continue
                if mode & _PRIVILEGE_BITS:
                    os.chmod(entry.path, stat.S_IMODE(mode) & ~_PRIVILEGE_BITS)
                if stat.S_ISDIR(mode):
                    stack.append(Path(entry.path))
    return total


def remove_tree(path: Path) -> None:
    """Delete an unpacked tree, including directories an image made unwritable."""

    def writable(function: object, failed: str, exc: object) -> None:
        parent = os.path.dirname(failed)
        os.chmod(parent, 0o700)
        if os.path.isdir(failed) and not os.path.islink(failed):
            os.chmod(failed, 0o700)
            shutil.rmtree(failed, onerror=writable)
        else:
            os.unlink(failed)

    if path.exists() or path.is_symlink():
        shutil.rmtree(path, onerror=writable)
