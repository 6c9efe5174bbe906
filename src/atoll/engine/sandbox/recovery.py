"""Cleaning up after an engine process that ended without releasing its jobs: their cgroups,
their capped and staging mounts, and the processes of job uids that no running executor holds.

A job's process tree does not outlive the process that started it (bubblewrap runs with
``--die-with-parent``), so after a restart nothing of an earlier job can be attached to; what
is left is removed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path

from atoll.engine.sandbox import mounts
from atoll.engine.sandbox.cgroups import CgroupSystem
from atoll.engine.sandbox.ids import UidPool, kill_processes_of, range_conflicts

log = logging.getLogger(__name__)


def remove_leftovers(
    system: CgroupSystem | None, marker: str, stage_dir: Path, pool: UidPool | None
) -> bool:
    """Kill and remove every job cgroup under ``system``'s parent, unmount every tmpfs with
    ``marker`` (outputs, logs, staging), empty ``stage_dir`` and kill the processes of job
    uids that nobody holds. False if some process survived."""
    stuck = False
    if system is not None:
        for job in system.leftovers():
            if not job.kill():
                stuck = True
            job.remove()
    for m in mounts.marked_mounts(marker):
        try:
            mounts.unmount(m.mount_point)
        except OSError as e:
            # One inside a staging tmpfs went with it when that was detached.
            if e.errno != errno.EINVAL:
                log.warning("cannot unmount a leftover job mount: %s", e)
    with contextlib.suppress(OSError), os.scandir(stage_dir) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                os.rmdir(entry.path)
    if pool is not None and not kill_orphan_uids(pool):
        stuck = True
    return not stuck


def kill_orphan_uids(pool: UidPool) -> bool:
    """Kill the processes of job uids that nobody holds; False if some survive."""
    first, last = pool.first, pool.last
    if range_conflicts(first, last):
        log.error("job uids %d-%d belong to host accounts too: not killing by uid", first, last)
        return True
    try:
        pool.prepare()
    except OSError as e:
        log.warning("cannot check the job uids for leftovers: %s", e)
        return True
    orphans = pool.orphans()
    try:
        return kill_processes_of([c.uid for c in orphans])
    finally:
        for claim in orphans:
            claim.release()
