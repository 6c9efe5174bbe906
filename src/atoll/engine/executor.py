"""The Executor interface: what the engine needs from anything that can run a job.

The engine prepares a job directory (inputs resolved, DDOs and the algorithm written) and
hands an :class:`ExecutionSpec` to an executor. The executor owns isolation and limits; it
never sees the store, keys or settings. Backends: ``sandbox`` (bubblewrap + cgroups, the
default, :mod:`atoll.engine.sandbox`); cluster backends implement the same protocol. A job
runs with the host's interpreter or in an unpacked image (:attr:`Runtime.root`); a backend
gives both the same isolation. How a backend isolates a job, which host user it runs as and
which devices give it a GPU are the backend's own business: the spec says what, never how.

Every execution has an id (:attr:`Execution.execution_id`) that the engine records with the
job: after a restart it asks the executor to :meth:`~Executor.attach` to it, and a backend
whose jobs survive their engine hands the running job back instead of losing it.

A backend that cannot enforce every part of the spec must raise
:class:`SandboxUnavailable` from :meth:`Executor.start` instead of running the job with less
isolation: fail closed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol


class SandboxUnavailable(RuntimeError):
    """Isolation or limits could not be set up; the job must not run. The message is safe to
    show to a consumer (it names no host path)."""


class InputChanged(SandboxUnavailable):
    """An input file is no longer the one the engine verified; the job must not run on it."""


class InputUnreadable(SandboxUnavailable):
    """A publisher's input (:attr:`Mount.publisher`) would be out of the job's reach under
    this backend; ``target`` is where the job would have found it (never a host path)."""

    def __init__(self, target: str) -> None:
        super().__init__("an input of the job is not readable by the job")
        self.target = target


class ExecutionLost(LookupError):
    """An execution id names no job this executor can reach: it ended with the process that
    ran it, or was never this executor's. The message names no host path."""


@dataclass(frozen=True)
class Mount:
    """A host path made visible inside the job, read-only unless ``writable``. Jobs run as
    a user of their own: they read what others may read, and a ``writable`` mount is written
    only where its modes let any user write."""

    source: Path
    target: str
    writable: bool = False
    #: what the job's mount table calls a read-only mount (a checksum); empty: its base name.
    #: Never its host path.
    content: str = ""
    #: size, mtime_ns, ctime_ns, ino, dev the file had when its bytes were verified; the
    #: executor refuses (InputChanged) to mount a file that no longer has them
    fingerprint: tuple[int, ...] = ()
    #: a publisher's file, reachable by a job only as its modes allow; a backend under which
    #: the job could not read it refuses the job (InputUnreadable) before it runs
    publisher: bool = False


@dataclass(frozen=True)
class Runtime:
    """The publisher-provided interpreter: ``interpreter`` is an absolute host path, run as the
    job's entry point; ``paths`` are host directories it needs (its prefix, shared libraries),
    mounted read-only at the same place inside.

    With ``root`` (an image runtime), the job's file system is that host directory, an
    unpacked image, read-only, and nothing of the host's: ``interpreter`` is then an absolute
    path inside it and ``paths`` stays empty. The ``/data`` layout, limits and isolation are
    the same as with the host's interpreter."""

    interpreter: Path
    paths: tuple[Path, ...] = ()
    root: Path | None = None


@dataclass(frozen=True)
class Limits:
    """What a job may use; a backend that cannot enforce one of them refuses the job."""

    memory_bytes: int = 512 * 1024**2
    pids: int = 64
    cpus: float = 1.0
    cpu_seconds: int = 600
    wall_seconds: float = 600.0
    file_size_bytes: int = 256 * 1024**2
    output_bytes: int = 256 * 1024**2
    log_bytes: int = 8 * 1024**2


@dataclass(frozen=True)
class ExecutionSpec:
    """What to run and with which limits.

    ``egress`` is the job's network allowlist. Empty (the default), the job has no network at
    all: a network namespace with only loopback. Otherwise each entry is ``"host:port"`` or
    ``"host"`` (any port), where host is a DNS name, ``*.domain`` (any name below it, not the
    domain itself) or an IP literal (IPv6 in brackets); the job then reaches exactly those
    destinations, and only through an HTTP proxy the executor provides (``HTTP_PROXY`` and
    ``HTTPS_PROXY`` in its environment; CONNECT for anything that is not plain HTTP). A name
    that resolves to a loopback, link-local or otherwise special address is refused unless that
    address is listed itself.

    ``gpus`` is how many GPUs the job gets; the backend decides how (the sandbox: the host's
    device nodes). ``devices`` are host device nodes (character devices, e.g.
    ``/dev/nvidia0``) given on top of those, each at the same path inside; a node the host does
    not have is skipped. The job sees no other device of the host.
    """

    job_id: str
    runtime: Runtime
    #: argv after the interpreter, e.g. ``["/data/transformations/algorithm"]``
    args: Sequence[str]
    #: read-only mounts: inputs, DDOs, the algorithm
    mounts: Sequence[Mount]
    env: Mapping[str, str]
    #: host directories that become ``/data/outputs`` and ``/data/logs`` (writable, capped)
    outputs_dir: Path
    logs_dir: Path
    limits: Limits = field(default_factory=Limits)
    workdir: str = "/data"
    egress: tuple[str, ...] = ()
    gpus: int = 0
    devices: tuple[str, ...] = ()


class ExitReason(StrEnum):
    """Why a job ended."""

    EXITED = "exited"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    CPU_TIME = "cpu_time"
    OUTPUT_LIMIT = "output_limit"
    STOPPED = "stopped"
    #: the machines running it were lost (a cluster's workers or scheduler), past retrying:
    #: the provider's failure, not the job's
    LOST = "lost"


@dataclass(frozen=True)
class ExecutionResult:
    """How a job ended: ``exit_code`` is None when it was killed or its status is lost."""

    reason: ExitReason
    exit_code: int | None
    duration: float
    #: a human sentence for ``statusText``; never a host path
    detail: str = ""


class Execution(Protocol):
    """A running job."""

    @property
    def execution_id(self) -> str:
        """What :meth:`Executor.attach` and :meth:`Executor.cancel` know this job by, also
        after the engine restarted; never a host path."""

    def wait(self) -> ExecutionResult:
        """Block until the job ends (or is killed for a limit) and every process of it is gone."""

    def cancel(self) -> None:
        """Kill the job; :meth:`wait` then reports ``ExitReason.STOPPED``. Idempotent."""

    def release(self) -> None:
        """Free what the execution holds (capped output mounts, cgroups) once the engine has
        published the outputs. Idempotent."""


#: receives the job's stdout and stderr as they come, already capped at ``Limits.log_bytes``
LogSink = Callable[[bytes], None]


class Executor(Protocol):
    """Anything that can run a job isolated and within its limits (see the module's text)."""

    name: str

    def check(self) -> None:
        """Raise :class:`SandboxUnavailable` if jobs cannot run isolated on this host."""

    def check_inputs(self, spec: ExecutionSpec) -> None:
        """Raise :class:`InputUnreadable` if the job could not read one of its publisher's
        inputs under this backend; starts nothing. :meth:`start` checks it again."""

    def start(self, spec: ExecutionSpec, on_log: LogSink) -> Execution:
        """Start the job; raise :class:`SandboxUnavailable` rather than run it unconfined."""

    def attach(self, execution_id: str) -> Execution:
        """The running execution with this id, to wait for or cancel; raise
        :class:`ExecutionLost` if it is not running any more (or never was)."""

    def cancel(self, execution_id: str) -> None:
        """Kill the execution with this id and remove what it left, whether or not this
        process started it. Idempotent; an unknown id is ignored."""

    def recover(self, keep: Collection[str] = ()) -> None:
        """Clean up what a previous process left behind after a crash (processes, cgroups,
        mounts), so that no job of it keeps running, except the executions in ``keep`` (those
        the engine attached to)."""

    def close(self) -> None:
        """Release what the executor holds for all jobs, once no job runs any more."""
