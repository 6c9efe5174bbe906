"""A trivial sandboxed job through a Dask cluster against the local sandbox, in the same run.

Starts the cluster's certificates, a scheduler and ``atoll worker`` processes on loopback
(mutual TLS, as in production), then measures:

- end to end, as a consumer sees it, a trivial job (it writes ``ok`` to an output) on two
  ``atoll serve`` providers of the same run, one that runs its jobs on this host's sandbox
  and one that sends them to the cluster: submit over HTTP, status ``finished``, result read;
  taken in turn; median, p95 and the ratio (goal: at most 1.3x);
- the executor alone (start, wait, release of ``sh -c 'echo ok'`` in the sandbox), locally
  and through Dask, in turn: what the cluster adds to a job, without the provider's part;
- how long a stop takes to end a running job on its worker;
- jobs per second with 1, 2 and 3 workers of 2 slots each.

Needs root and bubblewrap, like the sandbox.

    python bench/bench_dask.py --jobs 60
"""

from __future__ import annotations

import argparse
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

from bench_jobs import trivial_job_consumer
from subprocess_node import pct

from atoll.cluster.certs import issue, security
from atoll.cluster.executor import DaskExecutor
from atoll.engine.executor import Execution, ExecutionSpec, Executor, Limits, Runtime
from atoll.engine.sandbox import SandboxExecutor

LIMITS = Limits(memory_bytes=64 * 1024**2, pids=16, wall_seconds=60, output_bytes=1024**2)


def line(label: str, ms: list[float]) -> str:
    return (
        f"  {label:<28} median {statistics.median(ms):7.1f} ms   p95 {pct(ms, 95):7.1f} ms"
        f"   (n={len(ms)})"
    )


def spec(root: Path, script: str = "echo ok") -> ExecutionSpec:
    job = root / uuid.uuid4().hex
    job.mkdir()
    return ExecutionSpec(
        job_id=f"bench-{job.name}",
        runtime=Runtime(Path("/bin/sh")),
        args=["-c", script],
        mounts=[],
        env={},
        outputs_dir=job / "outputs",
        logs_dir=job / "logs",
        limits=LIMITS,
    )


def run_one(executor: Executor, root: Path) -> float:
    t = time.perf_counter()
    execution = executor.start(spec(root), lambda _: None)
    try:
        assert execution.wait().exit_code == 0
    finally:
        execution.release()
    return (time.perf_counter() - t) * 1000


def through_providers(base: Path, address: str, certs: Path, jobs: int) -> None:
    """Trivial jobs end to end on a provider running them here and one sending them to the
    cluster, in turn (see the module's text)."""
    with (
        trivial_job_consumer(base / "provider-local") as local_job,
        trivial_job_consumer(
            base / "provider-dask",
            ATOLL_CLUSTER_SCHEDULER=address,
            ATOLL_CLUSTER_CERTS_DIR=str(certs),
        ) as dask_job,
    ):
        local_ms, dask_ms = [], []
        for _ in range(jobs):
            local_ms.append(local_job() * 1000)
            dask_ms.append(dask_job() * 1000)
    print("trivial job end to end, as a consumer sees it (submit, finished, result read):")
    print(line("provider, local sandbox", local_ms))
    print(line("provider, through Dask", dask_ms))
    ratio = statistics.median(dask_ms) / statistics.median(local_ms)
    print(f"  ratio Dask/local (median): {ratio:.2f}x   (goal <= 1.3x)")


def stop_latency(executor: Executor, root: Path) -> float:
    started = threading.Event()

    def on_log(chunk: bytes) -> None:
        if b"started" in chunk:
            started.set()

    execution: Execution = executor.start(spec(root, "echo started; sleep 60"), on_log)
    try:
        started.wait(30)
        t = time.perf_counter()
        execution.cancel()
        execution.wait()
        return (time.perf_counter() - t) * 1000
    finally:
        execution.release()


def throughput(executor: Executor, root: Path, jobs: int, parallel: int) -> float:
    t = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda _: run_one(executor, root), range(jobs)))
    return jobs / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=60, help="jobs per measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="atoll-bench-dask-") as tmp:
        base = Path(tmp)
        certs, root, home = base / "certs", base / "jobs", base / "home"
        root.mkdir()
        home.mkdir()
        issue(certs)
        port = 20000 + os.getpid() % 20000
        address = f"tls://127.0.0.1:{port}"
        env = {**os.environ, "ATOLL_HOME": str(home)}
        atoll = [sys.executable, "-m", "atoll"]
        procs = [
            subprocess.Popen(
                [*atoll, "cluster", "scheduler", "--certs", str(certs), "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        ]
        local = SandboxExecutor(cgroup_name=f"atoll-bench-{os.getpid()}")
        local.check()
        cluster = DaskExecutor(address, security(certs, "client"), job_uid=200_000)
        try:

            def add_worker(n: int) -> None:
                procs.append(
                    subprocess.Popen(
                        [
                            *atoll,
                            *("worker", "--scheduler", address, "--certs", str(certs)),
                            *("--name", f"bench-{os.getpid()}-{n}", "--slots", "2"),
                        ],
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
                deadline = time.monotonic() + 120
                while len(cluster.client.scheduler_info(n_workers=-1)["workers"]) < n:
                    if time.monotonic() > deadline:
                        raise SystemExit("the worker did not join")
                    time.sleep(0.2)

            time.sleep(2)  # the scheduler's start
            add_worker(1)
            through_providers(base, address, certs, args.jobs)
            for _ in range(5):  # warm both paths
                run_one(local, root)
                run_one(cluster, root)
            local_ms, dask_ms = [], []
            for _ in range(args.jobs):
                local_ms.append(run_one(local, root))
                dask_ms.append(run_one(cluster, root))
            print("the executor alone, trivial sandboxed job (start, wait, release):")
            print(line("local sandbox", local_ms))
            print(line("through Dask (1 worker)", dask_ms))
            ratio = statistics.median(dask_ms) / statistics.median(local_ms)
            print(f"  ratio Dask/local (median): {ratio:.2f}x")
            stops = [stop_latency(cluster, root) for _ in range(10)]
            print("stop of a running job on its worker, until wait() returns:")
            print(line("through Dask", stops))
            print("jobs/s (2 slots per worker, as many jobs in flight as slots):")
            local_rate = throughput(local, root, args.jobs, 2)
            print(f"  local sandbox, 2 at once: {local_rate:6.1f} jobs/s")
            for n in (1, 2, 3):
                if n > 1:
                    add_worker(n)
                rate = throughput(cluster, root, args.jobs, 2 * n)
                print(f"  Dask, {n} worker(s):        {rate:6.1f} jobs/s")
        finally:
            cluster.close()
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)
            local.recover()
            local.close()


if __name__ == "__main__":
    main()
