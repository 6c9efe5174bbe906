"""A job on a worker with a job directory of its own (``atoll worker --jobs-dir DIR``), one
that does not share the operator's filesystem.

The operator sends, with the job, the files the engine wrote for it under its work directory
(DDOs, the algorithm, its parameters: :func:`job_files`). Such a worker writes them into its
own directory, ``DIR/job-<id>/work``, with the job's outputs and logs beside them
(:func:`stage`), runs the job there, and once it has ended hands its outputs and logs back as
one tar stream (:func:`pack_outputs`, fetched by the operator with a short task). The operator
unpacks them into the job's directories on its side (:func:`unpack_outputs`), where the engine
checks and publishes them to the results store as it does a local job's, so every replica of
the provider serves them.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path, PurePosixPath

from atoll.engine.executor import ExecutionSpec, Mount
from atoll.engine.sandbox.cgroups import job_cgroup_name


class ShippingError(OSError):
    """A job's files could not be staged on the worker or brought back."""


def _work(spec: ExecutionSpec) -> Path:
    # the engine's layout: work/outputs, work/logs, work/ddos, work/transformations, ...
    return spec.outputs_dir.parent


def _relative(path: Path, base: Path) -> PurePosixPath | None:
    try:
        return PurePosixPath(path.relative_to(base))
    except ValueError:
        return None


def job_files(spec: ExecutionSpec) -> dict[str, str]:
    """The files the engine wrote for the job, by their path under its work directory, as
    base64: every mounted file or directory under it (dataset files are mounted from where
    they are kept, never from there)."""
    work = _work(spec)
    files: dict[str, str] = {}
    for m in spec.mounts:
        rel = _relative(m.source, work)
        if rel is None:
            continue
        paths = [m.source] if m.source.is_file() else sorted(m.source.rglob("*"))
        for p in paths:
            if p.is_file() and not p.is_symlink():
                files[str(PurePosixPath(p.relative_to(work)))] = base64.b64encode(
                    p.read_bytes()
                ).decode()
    return files


def job_root(jobs_dir: Path, job_id: str) -> Path:
    return jobs_dir / job_cgroup_name(job_id)


def stage(spec: ExecutionSpec, files: dict[str, str], jobs_dir: Path) -> ExecutionSpec:
    """Write the job's files into this worker's own job directory and return the spec with
    its mounts, outputs and logs there. Raises ShippingError for a name that would leave it."""
    root = job_root(jobs_dir, spec.job_id)
    shutil.rmtree(root, ignore_errors=True)  # an earlier attempt's
    work = root / "work"
    for sub in ("outputs", "logs"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ShippingError("a file of the job has a name outside its directory")
        target = work / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(data))
        target.chmod(0o644)
    # whatever this worker's umask: the job's own user reaches what is written here
    for d in (root, *(p for p in work.rglob("*") if p.is_dir()), work):
        d.chmod(0o755)
    old = _work(spec)
    mounts = []
    for m in spec.mounts:
        under = _relative(m.source, old)
        mounts.append(m if under is None else _moved(m, work / under))
    return replace(spec, mounts=mounts, outputs_dir=work / "outputs", logs_dir=work / "logs")


def _moved(m: Mount, source: Path) -> Mount:
    return replace(m, source=source)


def unstage(jobs_dir: Path, job_id: str) -> None:
    shutil.rmtree(job_root(jobs_dir, job_id), ignore_errors=True)


def pack_outputs(outputs_dir: Path, logs_dir: Path) -> bytes:
    """The job's outputs and logs as one tar stream (``outputs/…``, ``logs/…``), links as
    links (never followed): the operator's checks treat them as they treat a local job's.
    Their size is the job's capped output and log space at most."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, d in (("outputs", outputs_dir), ("logs", logs_dir)):
            tar.add(d, arcname=name, recursive=True)
    return buf.getvalue()


def _checked(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """Python's ``data`` filter (nothing is written outside ``dest`` or through a link),
    except that what it refuses is left out rather than ending the unpacking, the job made
    it; and that a symbolic link pointing out stays a link, inside, as a local job's does
    (the output checks skip links)."""
    try:
        return tarfile.data_filter(member, dest)
    except tarfile.FilterError:
        if member.issym():
            root = os.path.realpath(dest)
            parent = os.path.realpath(os.path.join(root, os.path.dirname(member.name)))
            if parent == root or parent.startswith(root + os.sep):
                return member
        return None


def unpack_outputs(data: bytes, outputs_dir: Path, logs_dir: Path) -> None:
    """Unpack :func:`pack_outputs` into the job's directories on the operator's side
    (emptied first)."""
    parent = outputs_dir.parent
    if logs_dir.parent != parent:
        raise ShippingError("a job's outputs and logs are expected side by side")
    for d in (outputs_dir, logs_dir):
        shutil.rmtree(d, ignore_errors=True)
    staging = parent / ".shipped"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            for member in tar.getmembers():
                top = PurePosixPath(member.name).parts[:1]
                if top not in (("outputs",), ("logs",)):
                    raise ShippingError("the worker sent files outside the job's outputs")
            tar.extractall(staging, filter=_checked)
        for name, d in (("outputs", outputs_dir), ("logs", logs_dir)):
            shipped = staging / name
            if shipped.is_dir() and not shipped.is_symlink():
                os.replace(shipped, d)
            else:
                d.mkdir()
    except tarfile.TarError as e:
        raise ShippingError("the job's outputs came back unreadable") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def empty_outputs(outputs_dir: Path, logs_dir: Path) -> None:
    """Remove what :func:`unpack_outputs` brought back, keeping the directories."""
    for d in (outputs_dir, logs_dir):
        if d.is_dir() and not d.is_symlink():
            for entry in os.scandir(d):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
