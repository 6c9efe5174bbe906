"""Which process of a host runs the jobs of a sandbox's name.

An executor's name (its cgroup parent, its staging directory, its mounts' marker) comes from
its node directory or its worker's name, and recovering an executor's leftovers kills every
job under that name. A second process given the same name (a node directory served twice, a
worker started twice with the host's name) must therefore fail closed, not clear away the
running jobs of the first as if they were leftovers. The claim is a lock on the name's
staging directory, which the kernel lets go when its process dies, however it dies; within a
process, executors of one name (one after a simulated crash of the other) share it."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from atoll.engine.executor import SandboxUnavailable

#: the staging directories this process holds, with their open, locked descriptors
_HELD: dict[Path, int] = {}
_HELD_LOCK = threading.Lock()

TAKEN = (
    "another process on this host runs jobs under this sandbox's name: the same node "
    "directory served twice, or two workers of one name (give each its own --name)"
)


def hold(stage_dir: Path) -> None:
    """Claim ``stage_dir``'s name for this process (again: nothing); SandboxUnavailable
    when another process holds it."""
    with _HELD_LOCK:
        if stage_dir in _HELD:
            return
        fd = os.open(stage_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SandboxUnavailable(TAKEN) from None
        _HELD[stage_dir] = fd


def let_go(stage_dir: Path) -> None:
    with _HELD_LOCK:
        fd = _HELD.pop(stage_dir, None)
    if fd is not None:
        os.close(fd)
