"""The parts of starting a sandboxed job that come before and around bubblewrap: checking the
spec against what the host has, staging the job's files where its unprivileged uid reaches
them, and taking back a start that failed half-way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from pathlib import Path

from atoll.engine.executor import ExecutionSpec, SandboxUnavailable
from atoll.engine.sandbox import mounts
from atoll.engine.sandbox.allowlist import Allowlist
from atoll.engine.sandbox.bwrap import Egress, HostSystem, ImageRoot
from atoll.engine.sandbox.cgroups import JobCgroup, job_cgroup_name
from atoll.engine.sandbox.devices import is_char_device
from atoll.engine.sandbox.egress_proxy import EgressProxy
from atoll.engine.sandbox.ids import UidClaim
from atoll.engine.sandbox.stage import JobStage
from atoll.images.command import find_command

log = logging.getLogger(__name__)


def inode_cap(nbytes: int) -> int:
    """nr_inodes for a capped tmpfs: one per 4 KiB of space, at least 256. Without a cap an
    empty-file flood would pin kernel memory that the size cap does not count."""
    return min(max(nbytes // 4096, 256), 1 << 20)


def _under(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return root == "/" or path == root or path.startswith(root + "/")


def _visible(host: HostSystem, path: str, roots: list[str]) -> bool:
    for target, link in host.links:
        if _under(path, link):
            path = "/" + target.strip("/") + path[len(link) :]
    return any(_under(path, r) for r in roots)


def _validate_image(spec: ExecutionSpec) -> None:
    runtime = spec.runtime
    root = runtime.root
    if root is None or not root.is_absolute() or not root.is_dir():
        raise SandboxUnavailable("the image of the job is not unpacked")
    if runtime.paths:
        raise SandboxUnavailable("an image runtime takes no host paths")
    interpreter = str(runtime.interpreter)
    if not interpreter.startswith("/") or find_command(root, interpreter) is None:
        raise SandboxUnavailable("the runtime interpreter is not installed in the image")


def validate(spec: ExecutionSpec, host: HostSystem) -> None:
    """Refuse (SandboxUnavailable, no host path in the message) a spec the sandbox cannot
    run as asked: a runtime that is not installed or reaches outside its paths, a mount or
    device with an invalid or missing path."""
    runtime = spec.runtime
    if runtime.root is not None:
        _validate_image(spec)
    else:
        _validate_host_runtime(spec, host)
    for m in spec.mounts:
        if not m.target.startswith("/") or ".." in m.target.split("/"):
            raise SandboxUnavailable("an input of the job has an invalid location")
        if not m.source.exists():
            raise SandboxUnavailable("an input of the job is missing")
    if not spec.workdir.startswith("/"):
        raise SandboxUnavailable("the job's working directory is not absolute")
    for d in spec.devices:
        if not d.startswith("/") or os.path.normpath(d) != d:
            raise SandboxUnavailable("a device of the job has an invalid path")
        # Absent nodes are skipped; present ones must be character devices, never a disk.
        if os.path.lexists(d) and not is_char_device(d):
            raise SandboxUnavailable("a device of the job is not a character device")


def _validate_host_runtime(spec: ExecutionSpec, host: HostSystem) -> None:
    runtime = spec.runtime
    for p in runtime.paths:
        if not p.is_absolute() or os.path.realpath(p) == "/" or not p.exists():
            raise SandboxUnavailable("a path of the runtime is not installed")
    interpreter = runtime.interpreter
    real = os.path.realpath(interpreter)
    if not interpreter.is_absolute() or not os.path.isfile(real) or not os.access(real, os.X_OK):
        raise SandboxUnavailable("the runtime interpreter is not installed")
    roots = [host.usr, *host.dirs, *(str(p) for p in runtime.paths)]
    real_roots = [os.path.realpath(r) for r in roots]
    if not (
        _visible(host, os.path.normpath(interpreter), roots) and _visible(host, real, real_roots)
    ):
        raise SandboxUnavailable("the runtime interpreter is outside the runtime's paths")


def allowlist_of(spec: ExecutionSpec) -> Allowlist | None:
    """The job's parsed network allowlist; None for a job without network."""
    if not spec.egress:
        return None
    try:
        return Allowlist.parse(spec.egress)
    except ValueError as e:
        # The entries are the publisher's, not for the consumer to read.
        log.error("job %s: %s", spec.job_id, e)
        raise SandboxUnavailable("the job's network allowlist is invalid") from e


def stage_job(
    spec: ExecutionSpec,
    stage_dir: Path,
    marker: str,
    owner: tuple[int, int],
    egress: Egress | None,
    image: ImageRoot | None = None,
) -> JobStage:
    """Bind everything of the job's own that bubblewrap needs into its staging tmpfs.
    Raises OSError (after unmounting what it mounted).

    An image's root is presented through an overlay like an input directory, so that the
    job's mount table names none of the cache's host paths."""
    sources: list[Path] = [*spec.runtime.paths, *(m.source for m in spec.mounts if m.writable)]
    sources += [spec.outputs_dir, spec.logs_dir]
    if egress is not None:
        sources += [egress.socket_dir, egress.forwarder]
    if image is not None:
        sources.append(image.shell)
    presented = [m for m in spec.mounts if not m.writable]
    roots = [spec.runtime.root] if spec.runtime.root is not None else []
    stage = JobStage(stage_dir / job_cgroup_name(spec.job_id), marker, owner)
    # an overlay takes three entries: its mount point, its layer and the entry in it
    stage.mount(len(sources) + 3 * (len(presented) + len(roots)) + len(spec.devices))
    try:
        for root in roots:
            stage.present(root)
        for m in presented:
            stage.present(m.source, name=m.content, fingerprint=m.fingerprint)
        for source in sources:
            stage.add(source)
        for d in spec.devices:
            stage.add(Path(d), optional=True)
    except BaseException:
        with contextlib.suppress(OSError):
            stage.remove()
        raise
    return stage


def undo_start(
    cgroup: JobCgroup,
    proc: subprocess.Popen[bytes] | None,
    fds: list[int],
    mounted: list[Path],
    proxy: EgressProxy | None,
    stage: JobStage | None,
    claim: UidClaim | None,
) -> None:
    """Take back a start that failed before its execution existed."""
    emptied = cgroup.kill()
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    if proxy is not None:
        proxy.close()
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    if stage is not None:
        with contextlib.suppress(OSError):
            stage.remove()
    for target in reversed(mounted):
        with contextlib.suppress(OSError):
            mounts.unmount(target)
    cgroup.remove(timeout=2.0)
    if claim is not None and emptied:
        claim.release()
