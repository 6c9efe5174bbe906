"""Placements per second of the scheduler path: the operator's DaskExecutor against many
simulated workers whose executor does nothing, on a closed cluster on loopback.

Starts the cluster's certificates, a scheduler (``atoll cluster scheduler``) and, in helper
processes, ``--workers`` Dask workers carrying Atoll's worker plugin over an executor that
starts nothing (its job ends at once). Then, with ``--parallel`` jobs in flight:

- placements: ``--burst`` jobs started at once into free slots (``DaskExecutor.start``:
  submitted, placed by resources, started on a worker, which says so), in rounds: placements
  per second (goal: at least 500/s); their end and release follow, untimed;
- whole jobs, one after another in each slot: ``start``, ``wait`` (the end event) and
  ``release`` (straight on the worker, then the task's cancel): jobs per second, and the
  start and whole-job latencies (median, p95);
- the baselines, in the same run on the same workers: plain Dask, ``client.submit`` of a
  function that returns at once, with the same resources, and its result (as many at once,
  and one after another); and the same tasks sent in one graph (``client.map``), where the
  scheduler's cost per task is lowest.

The simulated workers' system monitors are slowed down: a real worker's is one per host, and
a hundred of them on one host took a quarter of its CPU from the processes under test.

For the operator and the scheduler it prints the CPU each spent per job beyond its idle use,
and the placements per second the scheduler would reach on a core of its own at that cost:
on a shared machine, the figure that says where the limit is.

Needs no sandbox: nothing runs.

    python bench/bench_placement.py --workers 100 --jobs 2000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
from subprocess_node import pct

from atoll.cluster.certs import issue, security
from atoll.cluster.executor import DaskExecutor
from atoll.cluster.worker import stop_job
from atoll.engine.executor import ExecutionResult, ExecutionSpec, ExitReason, Limits, Runtime

LIMITS = Limits(memory_bytes=64 * 1024**2, pids=16, wall_seconds=60, output_bytes=1024**2)
SLOTS = 4


def line(label: str, ms: list[float]) -> str:
    return (
        f"  {label:<30} median {statistics.median(ms):7.2f} ms   p95 {pct(ms, 95):7.2f} ms"
        f"   (n={len(ms)})"
    )


# -- the simulated workers (a helper process) -------------------------------------------------


class NullExecution:
    def wait(self) -> ExecutionResult:
        return ExecutionResult(ExitReason.EXITED, 0, 0.0)

    def cancel(self) -> None:
        pass

    def release(self) -> None:
        pass


class NullExecutor:
    """A node's executor that starts nothing: its jobs end at once, exit code 0."""

    def check(self) -> None:
        pass

    def start(self, spec: ExecutionSpec, on_log: Any) -> NullExecution:
        return NullExecution()


def serve_workers(scheduler: str, certs: Path, count: int, prefix: str) -> None:
    import dask
    from distributed import Worker

    from atoll.cluster.processes import CONTROL_THREADS, WORKER_SETTINGS
    from atoll.cluster.worker import AtollWorkerPlugin

    # as an ``atoll worker`` runs; but a real worker's system monitor (its host's CPU,
    # memory, network and disk, twice a second) is one per host: a hundred of them on this
    # host took a quarter of its CPU from the scheduler they simulate load on
    dask.config.set({**WORKER_SETTINGS, "distributed.admin.system-monitor.interval": "60s"})

    async def main() -> None:
        workers = [
            Worker(
                scheduler,
                name=f"{prefix}-{n}",
                host="127.0.0.1",
                nthreads=SLOTS + CONTROL_THREADS,
                resources={"slots": SLOTS, "memory_mb": 65536},
                security=security(certs, "worker"),
                plugins=(AtollWorkerPlugin(NullExecutor()),),  # type: ignore[arg-type]
                memory_limit=0,
                dashboard=False,
            )
            for n in range(count)
        ]
        await asyncio.gather(*workers)
        await asyncio.gather(*(w.finished() for w in workers))

    asyncio.run(main())


# -- the operator's side ------------------------------------------------------------------------


def spec(root: Path) -> ExecutionSpec:
    job = root / uuid.uuid4().hex
    return ExecutionSpec(
        job_id=f"bench-{job.name}",
        runtime=Runtime(Path("/bin/sh")),
        args=["-c", "true"],
        mounts=[],
        env={},
        outputs_dir=job / "outputs",
        logs_dir=job / "logs",
        limits=LIMITS,
    )


def atoll_job(executor: DaskExecutor, root: Path, starts: list[float]) -> float:
    t = time.perf_counter()
    execution = executor.start(spec(root), lambda _: None)
    starts.append((time.perf_counter() - t) * 1000)
    try:
        assert execution.wait().exit_code == 0
    finally:
        execution.release()
    return (time.perf_counter() - t) * 1000


def plain_job(executor: DaskExecutor) -> float:
    """Plain Dask: submit a task that returns at once (stop_job of no job: one of the two
    functions the workers accept), placed by the same resources, and wait for its result."""
    t = time.perf_counter()
    future = executor.client.submit(
        stop_job,
        "dask/none",
        resources=DaskExecutor.resources(spec(Path("/nonexistent"))),
        pure=False,
    )
    try:
        assert future.result() == "unknown"
    finally:
        future.release()
    return (time.perf_counter() - t) * 1000


def cpu_seconds(procs: dict[str, psutil.Process]) -> dict[str, float]:
    out = {}
    for role, proc in procs.items():
        times = proc.cpu_times()
        out[role] = times.user + times.system
    return out


def idle_cpu(procs: dict[str, psutil.Process], seconds: float = 5.0) -> dict[str, float]:
    """CPU seconds per second each process spends with no job (heartbeats, timers)."""
    before = cpu_seconds(procs)
    time.sleep(seconds)
    return {r: (s - before[r]) / seconds for r, s in cpu_seconds(procs).items()}


def batch_rate(
    executor: DaskExecutor, jobs: int, procs: dict[str, psutil.Process], idle: dict[str, float]
) -> float:
    """Plain Dask with every task sent in one graph (``client.map``): what the scheduler
    spends per task when submissions are not one message each."""
    before = cpu_seconds(procs)
    t = time.perf_counter()
    futures = executor.client.map(
        stop_job,
        [f"dask/none-{n}" for n in range(jobs)],
        resources=DaskExecutor.resources(spec(Path("/nonexistent"))),
        pure=False,
    )
    assert set(executor.client.gather(futures)) == {"unknown"}
    elapsed = time.perf_counter() - t
    for f in futures:
        f.release()
    ms = cpu_seconds(procs)["scheduler"] - before["scheduler"] - idle["scheduler"] * elapsed
    print(f"    scheduler CPU ms per task beyond idle: {ms / jobs * 1000:.2f}")
    return jobs / elapsed


def bursts(fn: Any, count: int, parallel: int, rounds: int) -> list[float]:
    """Placements per second where ``count`` jobs are started at once into free slots,
    ``parallel`` at a time, in each of ``rounds`` rounds: ``fn`` starts one and returns
    what ends it, which runs after the round's time is taken."""
    out = []
    with ThreadPoolExecutor(parallel) as pool:
        for _ in range(rounds):
            t = time.perf_counter()
            started = list(pool.map(lambda _: fn(), range(count)))
            out.append(count / (time.perf_counter() - t))
            list(pool.map(lambda end: end(), started))
    return out


def atoll_start(executor: DaskExecutor, root: Path) -> Any:
    """Atoll's placement: the operator's ``start`` (submitted, placed by resources, started
    on a worker, which says so); returns the job's end and release."""
    execution = executor.start(spec(root), lambda _: None)

    def end() -> None:
        execution.wait()
        execution.release()

    return end


def plain_start(executor: DaskExecutor) -> Any:
    """Plain Dask's: a task that returns at once, placed by the same resources, and its
    result."""
    plain_job(executor)
    return lambda: None


def burst_line(label: str, rates: list[float]) -> str:
    return (
        f"  {label:<36} median {statistics.median(rates):7.1f}/s   slowest round "
        f"{min(rates):7.1f}/s"
    )


def rate(
    fn: Any,
    jobs: int,
    parallel: int,
    procs: dict[str, psutil.Process] | None = None,
    idle: dict[str, float] | None = None,
) -> tuple[float, list[float]]:
    """Jobs per second running ``fn`` ``jobs`` times, ``parallel`` at once; with ``procs``,
    prints the CPU each process spent per job beyond its idle use (``idle``)."""
    before = cpu_seconds(procs or {})
    t = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        times = list(pool.map(lambda _: fn(), range(jobs)))
    elapsed = time.perf_counter() - t
    if procs:
        idle = idle or {}
        used = {
            r: (s - before[r] - idle.get(r, 0.0) * elapsed) / jobs * 1000
            for r, s in cpu_seconds(procs).items()
            # the simulated workers' idle use (heartbeats of many) is too uneven on a shared
            # machine for a figure per job
            # the simulated workers' idle use (heartbeats of many) is uneven on a shared
            # machine: their figure is the roughest
        }
        print(
            "    CPU ms per job beyond idle: "
            + ", ".join(f"{r} {ms:.2f}" for r, ms in used.items())
            + f"   (wall {elapsed / jobs * 1000:.2f} ms per job)"
        )
        print(
            f"    the scheduler alone, on a core of its own, would place "
            f"{1000 / max(used['scheduler'], 1e-3):.0f} jobs/s at this cost"
        )
    return jobs / elapsed, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=100, help="simulated workers")
    parser.add_argument("--procs", type=int, default=2, help="processes holding them")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per measurement")
    parser.add_argument("--parallel", type=int, default=64, help="jobs in flight")
    parser.add_argument(
        "--burst", type=int, default=400, help="jobs started at once (at most the free slots)"
    )
    parser.add_argument(
        "--profile-scheduler", metavar="FILE", help="write the scheduler's cProfile stats here"
    )
    parser.add_argument("--serve-workers", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_workers:
        scheduler, certs, count, prefix = args.serve_workers
        serve_workers(scheduler, Path(certs), int(count), prefix)
        return
    with tempfile.TemporaryDirectory(prefix="atoll-bench-placement-") as tmp:
        base = Path(tmp)
        certs, home, root = base / "certs", base / "home", base / "jobs"
        home.mkdir()
        root.mkdir()
        issue(certs)
        port = 20000 + os.getpid() % 20000
        address = f"tls://127.0.0.1:{port}"
        env = {**os.environ, "ATOLL_HOME": str(home)}
        profile = ["-m", "cProfile", "-o", args.profile_scheduler] if args.profile_scheduler else []
        scheduler = ["cluster", "scheduler", "--certs", str(certs), "--port", str(port)]
        procs = [
            subprocess.Popen(
                [sys.executable, *profile, "-m", "atoll", *scheduler],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        ]
        time.sleep(2)
        per = -(-args.workers // args.procs)
        for p in range(args.procs):
            count = min(per, args.workers - p * per)
            sim = (str(count), f"sim-{p}")
            procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--serve-workers", *(address, str(certs)), *sim],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        executor = DaskExecutor(address, security(certs, "client"), job_uid=os.getuid())
        try:
            deadline = time.monotonic() + 300
            while len(executor.client.scheduler_info(n_workers=-1)["workers"]) < args.workers:
                if time.monotonic() > deadline:
                    raise SystemExit("the simulated workers did not join")
                time.sleep(0.5)
            starts: list[float] = []
            lock = threading.Lock()

            def one() -> float:
                mine: list[float] = []
                ms = atoll_job(executor, root, mine)
                with lock:
                    starts.extend(mine)
                return ms

            warm = min(200, args.jobs)
            rate(one, warm, args.parallel)
            rate(lambda: plain_job(executor), warm, args.parallel)
            starts.clear()
            watched = {"operator": psutil.Process(), "scheduler": psutil.Process(procs[0].pid)}
            watched |= {f"workers{n}": psutil.Process(p.pid) for n, p in enumerate(procs[1:])}
            idle = idle_cpu(watched)
            print(
                "idle CPU use (no job): "
                + ", ".join(f"{r} {v * 100:.0f}%" for r, v in idle.items())
            )
            print("Atoll's path:")
            atoll_rate, atoll_ms = rate(one, args.jobs, args.parallel, watched, idle)
            graphs, jobs = executor._submits.graphs, executor._submits.jobs
            print("plain Dask:")
            plain_rate, plain_ms = rate(
                lambda: plain_job(executor), args.jobs, args.parallel, watched, idle
            )
            count = min(args.workers * SLOTS, args.burst)
            atoll_bursts = bursts(lambda: atoll_start(executor, root), count, args.parallel, 7)
            plain_bursts = bursts(lambda: plain_start(executor), count, args.parallel, 7)
            print(
                f"{args.workers} simulated workers x {SLOTS} slots, executor doing nothing; "
                f"{args.parallel} jobs in flight"
            )
            print(f"placements: {count} jobs started at once into free slots, 7 rounds:")
            print(burst_line("Atoll's path (placed and started)", atoll_bursts), "(goal >= 500/s)")
            print(burst_line("plain Dask (submit, result)", plain_bursts))
            ratio = statistics.median(atoll_bursts) / statistics.median(plain_bursts)
            print(f"  ratio Atoll/plain Dask (median rate): {ratio:.2f}x")
            print(f"whole jobs, one after another in each slot, {args.jobs} jobs each:")
            print(f"  Atoll's path (start, wait, release): {atoll_rate:7.1f} jobs/s")
            print(line("start (placed and started)", starts))
            print(line("whole job", atoll_ms))
            print(f"  plain Dask (submit, result):         {plain_rate:7.1f} tasks/s")
            print(line("plain task", plain_ms))
            print(f"  ratio Atoll/plain Dask (rate): {atoll_rate / plain_rate:.2f}x")
            print(
                f"  Atoll's submissions: {jobs} jobs in {graphs} graphs "
                f"({jobs / max(graphs, 1):.1f} a graph)"
            )
            print("plain Dask, all tasks in one graph (client.map):")
            print(f"  {batch_rate(executor, args.jobs, watched, idle):7.1f} tasks/s")
        finally:
            executor.close()
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)


if __name__ == "__main__":
    main()
