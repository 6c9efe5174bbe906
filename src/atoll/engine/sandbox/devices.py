"""Device nodes a job may get: the NVIDIA nodes of the GPUs it asked for.

A job's ``/dev`` is bubblewrap's minimal one (null, zero, full, random, urandom, tty, a
private pts and shm); the nodes in ``ExecutionSpec.devices`` are bound into it one by one, and
nothing else of the host's ``/dev`` is visible, so those nodes are all the hardware a job can
open. Only character devices are accepted: a block device would be a whole disk.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

#: the nodes every CUDA process opens besides its GPUs' own, as container runtimes pass them:
#: the driver's control node, unified memory, its tools interface, and mode setting
NVIDIA_CONTROL = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")


def is_char_device(path: str | os.PathLike[str]) -> bool:
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def gpu_devices(count: int, *, dev: Path = Path("/dev")) -> tuple[str, ...]:
    """The NVIDIA device nodes to pass to a job that asked for ``count`` GPUs: ``nvidia0`` up
    to ``nvidia<count-1>``, and the control nodes, each only where the host has it. Empty when
    none of those GPUs is present; fewer GPU nodes than ``count`` when the host has fewer, which
    the caller can tell by counting."""
    gpus = [dev / f"nvidia{i}" for i in range(max(0, count))]
    present = [str(p) for p in gpus if is_char_device(p)]
    if not present:
        return ()
    present += [str(dev / n) for n in NVIDIA_CONTROL if is_char_device(dev / n)]
    return tuple(present)
