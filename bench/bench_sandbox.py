"""What the sandbox costs: start-up of a bare interpreter, and read throughput of an input.

    sudo .venv/bin/python bench/bench_sandbox.py --runs 50 --size-mib 1024

(a) ``/usr/bin/python3 -c pass`` on the host, (b) the same through SandboxExecutor (cgroup,
capped mounts, bubblewrap; start() to wait() returning), (c) one reader script reading a
``--size-mib`` file in 1 MiB chunks on the host and inside the sandbox, where the file is
a read-only input (presented through the job's input overlay, as datasets are). The page
cache cannot be dropped here, so the file is read once first and both sides are timed warm.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from atoll.engine.executor import (
    ExecutionSpec,
    ExitReason,
    Limits,
    Mount,
    Runtime,
    SandboxUnavailable,
)
from atoll.engine.sandbox import SandboxExecutor

PYTHON = "/usr/bin/python3"
CHUNK = 1024 * 1024
INPUT = "/data/inputs/bench/0"
READER = """
import sys, time
buf = bytearray(1 << 20)
n = 0
with open(sys.argv[1], "rb", buffering=0) as f:
    t = time.perf_counter()
    while k := f.readinto(buf):
        n += k
    print(n, time.perf_counter() - t)
"""
LIMITS = Limits(
    memory_bytes=256 * 1024**2,
    pids=16,
    cpu_seconds=600,
    wall_seconds=600.0,
    output_bytes=1024**2,
    log_bytes=1024**2,
)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary(label: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{label:<34} median {statistics.median(ms):7.2f} ms   "
        f"p95 {percentile(ms, 95):7.2f} ms   (n={len(ms)})"
    )


def timed(fn: Callable[[], object], runs: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


class Bench:
    def __init__(self, executor: SandboxExecutor, root: Path) -> None:
        self.executor = executor
        self.root = root
        self.n = 0

    def spec(self, args: list[str], mounts: list[Mount]) -> ExecutionSpec:
        self.n += 1
        job = self.root / f"job{self.n}"
        return ExecutionSpec(
            job_id=f"bench-{os.getpid()}-{self.n}",
            runtime=Runtime(Path(PYTHON)),
            args=args,
            mounts=mounts,
            env={},
            outputs_dir=job / "outputs",
            logs_dir=job / "logs",
            limits=LIMITS,
        )

    def run(self, args: list[str], mounts: list[Mount] | None = None) -> tuple[float, bytes]:
        """Seconds from start() to wait() returning (release not counted), and the log."""
        spec = self.spec(args, mounts or [])
        log: list[bytes] = []
        t = time.perf_counter()
        execution = self.executor.start(spec, log.append)
        result = execution.wait()
        elapsed = time.perf_counter() - t
        execution.release()
        if result.reason is not ExitReason.EXITED or result.exit_code != 0:
            raise SystemExit(f"sandboxed run failed: {result}: {b''.join(log)[-500:]!r}")
        return elapsed, b"".join(log)


def host_read(path: Path) -> float:
    out = subprocess.run(
        [PYTHON, "-c", READER, str(path)], capture_output=True, check=True
    ).stdout.split()
    return int(out[0]) / float(out[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per start-up figure")
    parser.add_argument("--read-runs", type=int, default=5, help="timed runs per read figure")
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the input file")
    parser.add_argument("--dir", default=None, help="where to put the input file (a disk)")
    args = parser.parse_args()

    executor = SandboxExecutor(cgroup_name=f"atoll-bench-{os.getpid()}")
    try:
        executor.check()
    except SandboxUnavailable as e:
        print(f"sandbox unavailable: {e}", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="atoll-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        bench = Bench(executor, root)
        try:
            host = timed(lambda: subprocess.run([PYTHON, "-c", "pass"], check=True), args.runs)
            for _ in range(3):
                bench.run(["-c", "pass"])
            boxed = [bench.run(["-c", "pass"])[0] for _ in range(args.runs)]
            print(summary("host    python3 -c pass", host))
            print(summary("sandbox python3 -c pass", boxed))
            h_ms, b_ms = statistics.median(host) * 1000, statistics.median(boxed) * 1000
            ratio = f"{b_ms / h_ms:.2f}x   (+{b_ms - h_ms:.2f} ms)"
            print(f"{'sandbox / host (median)':<34} {ratio}")

            data = root / "input.bin"
            with data.open("wb") as f:
                block = os.urandom(CHUNK)
                for _ in range(args.size_mib):
                    f.write(block)
            host_read(data)  # into the page cache
            mount = [Mount(data, INPUT)]
            host_rates, boxed_rates = [], []
            for _ in range(args.read_runs):
                host_rates.append(host_read(data))
                out = bench.run(["-c", READER, INPUT], mount)[1].split()
                boxed_rates.append(int(out[0]) / float(out[1]))
            h = statistics.median(host_rates) / 1e6
            b = statistics.median(boxed_rates) / 1e6
            print(
                f"{'host    read ' + str(args.size_mib) + ' MiB (warm)':<34} median {h:9.0f} MB/s"
            )
            print(
                f"{'sandbox read ' + str(args.size_mib) + ' MiB (warm)':<34} median {b:9.0f} MB/s"
            )
            print(f"{'sandbox / host (median)':<34} {b / h:.3f}x   (n={args.read_runs})")
        finally:
            executor.recover()
            executor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
