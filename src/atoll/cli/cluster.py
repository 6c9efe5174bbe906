"""atoll cluster certs / scheduler, and atoll worker: the processes of a Dask cluster that
runs the engine's jobs. Each checks that the cluster's part is installed, then imports it."""

from __future__ import annotations

import functools
import importlib.util
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from atoll.cli.common import HomeOpt, console
from atoll.config import Settings, load_settings
from atoll.errors import ConfigError, Unavailable
from atoll.home import default_home

if TYPE_CHECKING:
    from atoll.cluster.certs import Role

T = TypeVar("T")

app = typer.Typer(
    help="A closed Dask cluster that runs the engine's jobs: certificates and the scheduler.",
    no_args_is_help=True,
)

CertsOpt = Annotated[
    Path | None,
    typer.Option(
        "--certs",
        help="Directory of the cluster's certificates (default: the cluster_certs_dir "
        "setting, or cluster-certs in the node directory)",
        show_default=False,
    ),
]


def _stop(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(0)


def _checked(check: Callable[[T], T], value: T, option: str) -> T:
    """``value`` as ``check`` passes it; its refusal as the option's one line."""
    try:
        return check(value)
    except ValueError as e:
        raise ConfigError(f"{option}: {e}") from None


def _same_cluster(scheduler: str, certs: Path, role: Role) -> None:
    """Refuse, in one line, certificates the scheduler and this process do not share."""
    from atoll.cluster.certs import security
    from atoll.cluster.reach import CertificateRefused, check_certificates

    try:
        check_certificates(scheduler, security(certs, role), role)
    except CertificateRefused as e:
        raise ConfigError(str(e)) from None
    except FileNotFoundError as e:
        raise ConfigError(f"{e}; create them with: atoll cluster certs") from None


def need_cluster() -> None:
    """Refuse, in one line, a cluster command where Dask is not installed."""
    if importlib.util.find_spec("distributed") is None:
        raise ConfigError("this command needs the cluster's part: pip install 'atoll[cluster]'")


def _certs(settings: Settings, certs: Path | None) -> Path:
    directory = certs or settings.cluster_certs
    if not (directory / "ca.pem").is_file():
        raise ConfigError(
            f"no cluster certificates in {directory}; create them with: atoll cluster certs"
        )
    return directory


@app.command("certs")
def certs(
    home: HomeOpt = None,
    certs: CertsOpt = None,
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            help="A name or address the certificates are for (repeat; default: "
            "localhost and 127.0.0.1)",
        ),
    ] = None,
    days: Annotated[int, typer.Option(help="Days the certificates are valid")] = 365,
) -> None:
    """Create the cluster's authority (once) and issue the scheduler's, workers' and client's
    certificates; run again to rotate them (the authority stays)."""
    need_cluster()
    from atoll.cluster.certs import issue

    settings = load_settings(home or default_home())
    directory = certs or settings.cluster_certs
    try:
        issue(directory, tuple(host) if host else ("localhost", "127.0.0.1"), days=days)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    console.print(f"cluster certificates in {directory}")


@app.command("scheduler")
def scheduler(
    home: HomeOpt = None,
    certs: CertsOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8786,
    attempts: Annotated[
        int, typer.Option(help="Times a job runs at most when the workers running it die")
    ] = 2,
) -> None:
    """Run the cluster's Dask scheduler, reachable over mutual TLS only."""
    need_cluster()
    import asyncio

    from atoll.cluster import address
    from atoll.cluster.processes import serve_scheduler

    _checked(address.host, host, "--host")
    _checked(address.port, port, "--port")
    if attempts < 1:
        raise ConfigError("--attempts must be at least 1")
    settings = load_settings(home or default_home())
    directory = _certs(settings, certs)
    shown = f"[{host}]" if ":" in host else host
    console.print(f"scheduler on tls://{shown}:{port}")
    signal.signal(signal.SIGTERM, _stop)
    try:
        asyncio.run(serve_scheduler(directory, host, port, attempts))
    except (OSError, RuntimeError) as e:
        reason = _why(e, "failed")
        raise Unavailable(f"the scheduler cannot listen on {shown}:{port}: {reason}") from None


def worker(
    scheduler: Annotated[
        str, typer.Option("--scheduler", help="The scheduler's address, tls://host:port")
    ],
    home: HomeOpt = None,
    certs: CertsOpt = None,
    name: Annotated[
        str | None,
        typer.Option(help="This worker's name, unique in the cluster (default: the host name)"),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    slots: Annotated[
        int | None, typer.Option(help="Jobs at once (default: cluster_worker_slots)")
    ] = None,
    memory_mb: Annotated[
        int | None,
        typer.Option(help="MiB of memory for jobs (default: cluster_worker_memory_mb, or all)"),
    ] = None,
    gpus: Annotated[int, typer.Option(help="GPUs this node gives jobs")] = 0,
    metrics_port: Annotated[
        int,
        typer.Option(help="Serve this worker's /metrics (Prometheus) on this port; 0: none"),
    ] = 0,
    data_root: Annotated[
        list[Path] | None,
        typer.Option(
            "--data-root",
            help="A data root of the provider whose files this node holds (repeat): jobs "
            "on datasets under it run here (with the provider's cluster_data_on_workers)",
        ),
    ] = None,
    jobs_dir: Annotated[
        Path | None,
        typer.Option(
            "--jobs-dir",
            help="A job directory of this node's own, for a node that does not share the "
            "provider's filesystem: a job's files come with it and its outputs go back",
        ),
    ] = None,
) -> None:
    """Run a compute node: a Dask worker that runs the engine's jobs in this host's sandbox,
    and nothing else. It refuses to start where the sandbox cannot be built. SIGUSR1 drains
    it (see atoll cluster drain)."""
    need_cluster()
    import asyncio

    from atoll.cluster import address
    from atoll.cluster.processes import default_worker_name, serve_worker, worker_executor
    from atoll.engine.executor import SandboxUnavailable
    from atoll.images.cache import ImageCache
    from atoll.storage.cache import SourceCache

    _checked(address.scheduler, scheduler, "--scheduler")
    _checked(address.listenable, _checked(address.host, host, "--host"), "--host")
    if metrics_port:
        _checked(address.port, metrics_port, "--metrics-port")
        _checked(functools.partial(address.listenable, number=metrics_port), host, "--metrics-port")
    if name is not None:
        _checked(address.worker_name, name, "--name")
    if slots is not None and slots < 1:
        raise ConfigError("--slots must be at least 1")
    if memory_mb is not None and memory_mb < 0:
        raise ConfigError("--memory-mb must be 0 (all of this host's memory) or more")
    if gpus < 0:
        raise ConfigError("--gpus must be 0 or more")
    for root in data_root or ():
        if not root.is_dir():
            raise ConfigError(f"--data-root {root}: no such directory")
    if jobs_dir is not None and jobs_dir.exists() and not jobs_dir.is_dir():
        raise ConfigError(f"--jobs-dir {jobs_dir}: not a directory")
    settings = load_settings(home or default_home())
    directory = _certs(settings, certs)
    _same_cluster(scheduler, directory, "worker")
    if name is None:
        try:
            name = address.worker_name(default_worker_name())
        except ValueError:
            raise ConfigError(
                "this host's name cannot name a worker: give one with --name"
            ) from None
    sources = SourceCache(settings.source_cache_dir, settings.source_cache_mb * 1024**2)
    images = ImageCache(settings.images_dir, settings.image_cache_mb * 1024**2)
    first, count = settings.sandbox_uid_first, settings.sandbox_uid_count
    try:
        executor = worker_executor(name, (first, first + count - 1) if count > 0 else None)
    except (SandboxUnavailable, ValueError) as e:
        raise Unavailable(f"this node cannot run jobs: {e}") from None
    console.print(f"worker {name} joining {scheduler}")
    # a stop (SIGTERM) ends as an exit, so that the jobs' sandboxes are cleared on the way out
    signal.signal(signal.SIGTERM, _stop)
    try:
        asyncio.run(
            serve_worker(
                scheduler,
                directory,
                executor,
                name=name,
                slots=slots if slots is not None else settings.cluster_worker_slots,
                memory_mb=memory_mb if memory_mb is not None else settings.cluster_worker_memory_mb,
                host=host,
                gpus=gpus,
                metrics_port=metrics_port,
                caches=(("sources", sources.size), ("images", images.total_bytes)),
                data_roots=[str(r.resolve()) for r in data_root or ()],
                jobs_dir=jobs_dir.resolve() if jobs_dir is not None else None,
                cache=sources,
            )
        )
    except (OSError, RuntimeError) as e:
        reason = _why(e, "the scheduler refused it")
        raise Unavailable(f"worker {name} could not join {scheduler}: {reason}") from None
    finally:
        executor.recover()
        executor.close()


def _why(error: Exception, otherwise: str) -> str:
    """Why Dask's scheduler or worker did not start, in words: Dask says only "failed to
    start", with the scheduler's refusal or the system's error as the cause."""
    cause = error.__cause__ or error
    if "name taken" in str(cause):
        return "another worker of the cluster has this name (give each its own --name)"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return otherwise


@app.command("drain")
def drain(
    worker: Annotated[str, typer.Argument(help="The worker's name (or its tls:// address)")],
    home: HomeOpt = None,
    certs: CertsOpt = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="The scheduler's address, tls://host:port (default: cluster_scheduler)"),
    ] = None,
    wait: Annotated[
        bool, typer.Option(help="Wait until the worker's jobs are released and it has left")
    ] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait at most")] = 3600.0,
) -> None:
    """Drain a worker: it takes no new job, its running jobs finish, then it leaves the
    cluster (its process ends). Uses the client certificate."""
    need_cluster()
    from atoll.cluster import address
    from atoll.cluster.drain import connect, request_drain, wait_gone

    settings = load_settings(home or default_home())
    directory = _certs(settings, certs)
    where = _checked(address.scheduler, scheduler or settings.cluster_scheduler, "--scheduler")
    if not timeout > 0:
        raise ConfigError("--timeout must be more than 0 seconds")
    _same_cluster(where, directory, "client")
    try:
        client = connect(where, directory)
    except (OSError, TimeoutError):
        raise Unavailable("the cluster's scheduler cannot be reached") from None
    with client:
        try:
            answer = request_drain(client, worker)
        except LookupError as e:
            raise Unavailable(str(e)) from None
        console.print(f"worker {worker} draining; {answer['running']} job(s) running")
        if wait:
            if not wait_gone(client, worker, timeout):
                raise Unavailable(f"worker {worker} still runs jobs after {timeout:g} s")
            console.print(f"worker {worker} drained and gone")
