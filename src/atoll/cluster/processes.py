"""The processes of a cluster: the Dask scheduler and an ``atoll worker``, each speaking
only mutual TLS with the cluster's certificates."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import dask
import psutil
from distributed import Scheduler, SchedulerPlugin, Worker

from atoll.cluster.certs import security
from atoll.cluster.drain import Drain
from atoll.cluster.metrics import CacheSize, NodeState, WorkerCollector, serve_metrics
from atoll.cluster.placement import held
from atoll.cluster.worker import AtollWorkerPlugin
from atoll.engine.executor import SandboxUnavailable
from atoll.engine.sandbox import SandboxExecutor
from atoll.storage.cache import SourceCache

log = logging.getLogger(__name__)

MIB = 1024**2
#: Dask's own HTTP server (its dashboard, logs, call stacks, a proxy to the workers) answers
#: whoever connects, without TLS, on every interface of the scheduler's host: a closed cluster
#: serves none of it. Dask starts the server whatever it is told, so it gets no route and
#: listens on loopback, on a port of the system's choosing.
HTTP_ADDRESS = "127.0.0.1:0"
#: Dask's settings in the scheduler
SCHEDULER_SETTINGS: dict[str, Any] = {"distributed.scheduler.http.routes": []}
#: Dask's settings in an ``atoll worker``; its statistical profiler also sampled the threads
#: of every worker each 10 ms for that dashboard
WORKER_SETTINGS: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.worker.http.routes": [],
}
#: threads a worker keeps beyond its slots, for the short tasks that stop jobs
CONTROL_THREADS = 2


def worker_cgroup_name(name: str) -> str:
    """The sandbox's cgroup parent of a worker: its own, so that recovering one worker's
    leftovers never touches another's jobs on the same host. Two names differing only past
    what a cgroup's name holds, or in characters it cannot hold, still get their own."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    if safe == name and len(name) <= 64:
        return "atoll-dask-" + name
    return f"atoll-dask-{safe[:48]}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"


def default_worker_name() -> str:
    return socket.gethostname()


class FewerHandshakeWarnings(logging.Filter):
    """Let through one of Dask's warnings of a failed TLS handshake per ``period`` seconds,
    the next one saying how many were held back. Dask logs every one, and whoever reaches a
    listening port can fail handshakes as fast as they like: the node's log is not theirs to
    fill."""

    MESSAGE = "TLS handshake failed"

    def __init__(self, period: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.period = period
        self._clock = clock
        self._last: float | None = None
        self._held = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str) or self.MESSAGE not in record.msg:
            return True
        now = self._clock()
        with self._lock:
            if self._last is not None and now - self._last < self.period:
                self._held += 1
                return False
            held, self._held, self._last = self._held, 0, now
        if held:
            record.msg += f" ({held} more failed handshakes in the last {self.period:g} s)"
        return True


def fewer_handshake_warnings() -> None:
    """Install :class:`FewerHandshakeWarnings` on Dask's TCP logger (once per process)."""
    logger = logging.getLogger("distributed.comm.tcp")
    if not any(isinstance(f, FewerHandshakeWarnings) for f in logger.filters):
        logger.addFilter(FewerHandshakeWarnings())


async def serve_scheduler(certs: Path, host: str, port: int, attempts: int = 2) -> None:
    """Run the scheduler until it is closed. A job whose worker dies runs again on another,
    ``attempts`` times in all."""
    if attempts < 1:
        raise ValueError("a job needs at least one attempt")
    dask.config.set({**SCHEDULER_SETTINGS, "distributed.scheduler.allowed-failures": attempts - 1})
    fewer_handshake_warnings()
    with stopped_by_sigterm():
        await _serve_scheduler(certs, host, port)


async def _serve_scheduler(certs: Path, host: str, port: int) -> None:
    async with Scheduler(
        host=host,
        port=port,
        protocol="tls",
        security=security(certs, "scheduler"),
        dashboard=False,
        dashboard_address=HTTP_ADDRESS,
    ) as scheduler:
        scheduler.add_plugin(PromptStreams())
        log.info("scheduler listening at %s", scheduler.address)
        await scheduler.finished()


@contextlib.contextmanager
def stopped_by_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM cancels the running task, and the block ends quietly when it
    did. Not an exception raised from a signal handler: that lands wherever the loop is, and
    in a busy scheduler or worker a comm's or a task's handler caught it and went on, so that
    a stopped process kept running (and a worker its jobs' sandboxes). A cancel lands where
    the task waits, and the Dask server closes on its way out of its ``async with``."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    stopped: list[bool] = []

    def stop() -> None:
        if not stopped:
            stopped.append(True)
            task.cancel()

    previous = signal.getsignal(signal.SIGTERM)
    loop.add_signal_handler(signal.SIGTERM, stop)
    try:
        yield
    except asyncio.CancelledError:
        if not stopped:
            raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, previous)


class PromptStreams(SchedulerPlugin):
    """Has the scheduler send a client or a worker what it has for it as it comes: Dask holds
    a client's messages 2 ms apart and a worker's 5 ms apart, so that a short job's end (a
    topic event) waited there behind its log, and its task behind the previous job's cancel.
    Messages that come while one is being written still go together."""

    name = "atoll-prompt-streams"

    def add_client(self, scheduler: Scheduler, client: str) -> None:
        # the client's stream is made right after this hook, in the same step of the loop
        asyncio.get_running_loop().call_soon(self._prompt, scheduler.client_comms, client)

    def add_worker(self, scheduler: Scheduler, worker: str) -> None:
        # the worker's stream is made before this hook
        self._prompt(scheduler.stream_comms, worker)

    @staticmethod
    def _prompt(streams: dict[str, Any], key: str) -> None:
        stream = streams.get(key)
        if stream is not None:
            stream.interval = 0


def worker_executor(name: str, uid_range: tuple[int, int] | None) -> SandboxExecutor:
    """The node's sandbox, checked; SandboxUnavailable if it cannot be built here, or if
    another process on this host already runs a worker of this name."""
    executor = SandboxExecutor(cgroup_name=worker_cgroup_name(name), uid_range=uid_range)
    # its check claims the worker's name on this host (atoll.engine.sandbox.claim)
    executor.check()
    # what an earlier run of this worker left (its jobs died with it)
    executor.recover()
    return executor


async def serve_worker(
    scheduler: str,
    certs: Path,
    executor: SandboxExecutor,
    *,
    name: str,
    slots: int,
    memory_mb: int,
    host: str,
    gpus: int = 0,
    metrics_port: int = 0,
    caches: tuple[CacheSize, ...] = (),
    data_roots: Sequence[str] = (),
    jobs_dir: Path | None = None,
    cache: SourceCache | None = None,
) -> None:
    """Run an Atoll worker until it is closed (or drained: SIGUSR1, or ``atoll cluster
    drain``); with a ``metrics_port``, its ``/metrics`` are served there on ``host``. It
    advertises the ``data_roots`` it holds (:mod:`atoll.cluster.placement`); with
    ``jobs_dir``, jobs run in a directory of its own (:mod:`atoll.cluster.shipping`); URL
    and S3 sources are fetched into ``cache``.

    A worker that loses its scheduler (killed, restarted) loses its jobs with it (Dask's
    workers do not reconnect): it clears their sandboxes and joins the scheduler again at the
    same address, waiting for it as long as it takes, so that the operator finds it there to
    run the jobs it sends again."""
    if slots < 1:
        raise SandboxUnavailable("a worker needs at least one slot")
    memory = memory_mb or psutil.virtual_memory().total // MIB
    resources: dict[str, float] = {"slots": slots, "memory_mb": memory}
    if gpus:
        resources["gpus"] = gpus
    resources.update(held(data_roots))
    if jobs_dir is not None:
        jobs_dir.mkdir(parents=True, exist_ok=True)
    dask.config.set(WORKER_SETTINGS)
    fewer_handshake_warnings()
    with stopped_by_sigterm():
        while True:
            plugin = AtollWorkerPlugin(executor, jobs_dir=jobs_dir, cache=cache)
            state = NodeState(slots)
            async with Worker(
                scheduler,
                name=name,
                host=host,
                nthreads=slots + CONTROL_THREADS,
                resources=resources,
                security=security(certs, "worker"),
                plugins=(plugin,),
                memory_limit=0,
                dashboard=False,
                dashboard_address=HTTP_ADDRESS,
            ) as worker:
                reasons = close_reasons(worker)
                log.info("worker %s joined %s", worker.address, scheduler)
                drain = Drain(worker, plugin, state)
                drain.install()
                asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, drain.start)
                stop_metrics = None
                if metrics_port:
                    collector = WorkerCollector(name, plugin, state, caches)
                    stop_metrics = serve_metrics(collector, host, metrics_port)
                try:
                    await worker.finished()
                finally:
                    if stop_metrics is not None:
                        stop_metrics()
            if not reasons or reasons[0] not in REJOIN_REASONS:
                return
            log.warning("worker %s lost the scheduler; joining it again", name)
            # what the closed worker's jobs left (a job whose release was cut short)
            executor.recover()
            await asyncio.sleep(REJOIN_DELAY)


#: why a Dask worker closes when its scheduler is gone (rather than told to close, or drained)
REJOIN_REASONS = ("worker-handle-scheduler-connection-broken",)
#: seconds between a worker's loss of its scheduler and its next try to join
REJOIN_DELAY = 0.5


def close_reasons(worker: Worker) -> list[str]:
    """The reasons ``worker`` is asked to close for, the first first (Dask does not keep
    them)."""
    reasons: list[str] = []
    close = worker.close

    async def noting_close(*args: Any, **kwargs: Any) -> Any:
        reasons.append(str(kwargs.get("reason", "worker-close")))
        return await close(*args, **kwargs)

    worker.close = noting_close  # type: ignore[method-assign]
    return reasons
