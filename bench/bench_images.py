"""What running a job in an image costs: a cold start (pull and unpack, per MB) and a warm
start (the image in the cache), beside a job with the host's interpreter, in the same run.

    sudo .venv/bin/python bench/bench_images.py --runs 30 --cold-runs 3

A Debian docker-registry is started on a loopback port and the Debian test image with
Python's standard library (built by the test setup with mmdebstrap, cached) is pushed to it
with skopeo. Each figure is the engine's way for a job: for the image, the checks made again
before a connection (allowlist, registry), ``ImageStore.acquire`` (for a cold start into an
empty cache: pull, verify, scan, unpack) and finding the entrypoint's command; then, for both,
the sandbox from ``start()`` to ``wait()`` returning of the same trivial algorithm. Host and
warm image jobs alternate, so that both see the same machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from atoll.engine.executor import ExecutionSpec, ExitReason, Limits, Mount, Runtime
from atoll.engine.image_runtime import ALGORITHM_PATH, checked_reference, image_run
from atoll.engine.sandbox import SandboxExecutor
from atoll.images.access import RegistryAccess
from atoll.images.store import ImageStore
from atoll.models.environment import Environment
from atoll.models.job import ContainerRun

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the test images' recipe
from tests.images.conftest import PYTHON_RECIPE, build_debian_layout

PYTHON = Path("/usr/bin/python3")
ALGORITHM = "import sys\nprint(sys.version_info[0])\n"
LIMITS = Limits(
    memory_bytes=256 * 1024**2,
    pids=16,
    cpu_seconds=60,
    wall_seconds=60.0,
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
        f"{label:<36} median {statistics.median(ms):8.1f} ms   "
        f"p95 {percentile(ms, 95):8.1f} ms   (n={len(ms)})"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_registry(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    (home / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {home / 'storage'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    process = subprocess.Popen(
        ["docker-registry", "serve", str(home / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/", trust_env=False).status_code == 200:
                return process, f"127.0.0.1:{port}"
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the registry did not start")
        time.sleep(0.05)


def push(layout: Path, host: str) -> str:
    target = f"docker://{host}/bench/python3:latest"
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:latest", target],
        check=True,
        capture_output=True,
    )
    digest = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", target],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{host}/bench/python3@{digest}"


class Bench:
    def __init__(self, executor: SandboxExecutor, root: Path) -> None:
        self.executor = executor
        self.root = root
        self.n = 0
        self.algorithm = root / "algorithm.py"
        self.algorithm.write_text(ALGORITHM)

    def run(self, runtime: Runtime, args: list[str], env: dict[str, str]) -> None:
        self.n += 1
        job = self.root / f"job{self.n}"
        spec = ExecutionSpec(
            job_id=f"bench-images-{os.getpid()}-{self.n}",
            runtime=runtime,
            args=args,
            mounts=[Mount(self.algorithm, ALGORITHM_PATH)],
            env=env,
            outputs_dir=job / "outputs",
            logs_dir=job / "logs",
            limits=LIMITS,
        )
        log: list[bytes] = []
        execution = self.executor.start(spec, log.append)
        try:
            result = execution.wait()
        finally:
            execution.release()
        if result.reason is not ExitReason.EXITED or result.exit_code != 0:
            raise SystemExit(f"job failed: {result}: {b''.join(log)[-500:]!r}")

    def host_job(self) -> float:
        t = time.perf_counter()
        self.run(Runtime(PYTHON), [ALGORITHM_PATH], {})
        return time.perf_counter() - t

    def image_job(
        self, store: ImageStore, container: ContainerRun, env: Environment
    ) -> tuple[float, int]:
        """Seconds for the engine's image path and the job; the image's unpacked size."""
        t = time.perf_counter()
        reference = checked_reference(container, env, store)
        with store.acquire(reference) as image:
            run = image_run(image, container)
            self.run(run.runtime, run.args, run.env)
            size = image.size
        return time.perf_counter() - t, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed warm runs of each kind")
    parser.add_argument("--cold-runs", type=int, default=3, help="timed cold starts")
    parser.add_argument("--dir", default=None, help="where the cache and jobs go (a disk)")
    args = parser.parse_args()
    for tool in ("docker-registry", "skopeo", "umoci", "mmdebstrap"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (scripts/setup installs it)", file=sys.stderr)
            return 1

    executor = SandboxExecutor(cgroup_name=f"atoll-bench-{os.getpid()}")
    executor.check()
    layout = build_debian_layout(PYTHON_RECIPE, "debian-python3-full")
    pulled_bytes = sum(f.stat().st_size for f in (layout / "blobs").rglob("*") if f.is_file())
    with tempfile.TemporaryDirectory(prefix="atoll-bench-images-", dir=args.dir) as tmp:
        root = Path(tmp)
        (root / "registry").mkdir()
        registry, host = start_registry(root / "registry")
        try:
            reference = push(layout, host)
            access = (RegistryAccess(host=host, insecure=True),)
            env = Environment(id="bench", images=["*"])
            container = ContainerRun(image=reference, entrypoint="python3 $ALGO")
            bench = Bench(executor, root)

            cold: list[float] = []
            size = 0
            for i in range(args.cold_runs):
                store = ImageStore(access, root / f"cold{i}", cache_bytes=1 << 32)
                seconds, size = bench.image_job(store, container, env)
                cold.append(seconds)
                shutil.rmtree(root / f"cold{i}", ignore_errors=True)

            warm_store = ImageStore(access, root / "warm", cache_bytes=1 << 32)
            bench.image_job(warm_store, container, env)  # into the cache
            for _ in range(3):
                bench.host_job()
                bench.image_job(warm_store, container, env)
            host_runs: list[float] = []
            warm: list[float] = []
            for _ in range(args.runs):
                host_runs.append(bench.host_job())
                warm.append(bench.image_job(warm_store, container, env)[0])

            mb_pulled, mb_unpacked = pulled_bytes / 1e6, size / 1e6
            print(f"image: {mb_pulled:.1f} MB pulled, {mb_unpacked:.1f} MB unpacked")
            print(summary("cold image job (pull+unpack+run)", cold))
            per_mb = statistics.median(cold) * 1000 / mb_pulled
            print(
                f"{'cold start per MB':<36} {per_mb:8.1f} ms per MB pulled   "
                f"{statistics.median(cold) * 1000 / mb_unpacked:6.1f} ms per MB unpacked"
            )
            print(summary("host-runtime job", host_runs))
            print(summary("warm image job", warm))
            h, w = statistics.median(host_runs), statistics.median(warm)
            print(f"{'warm image / host (median)':<36} {w / h:.2f}x   (+{(w - h) * 1000:.1f} ms)")
            hp, wp = percentile(host_runs, 95), percentile(warm, 95)
            print(f"{'warm image / host (p95)':<36} {wp / hp:.2f}x   (goal: median <= 1.2x)")
        finally:
            registry.terminate()
            registry.wait(timeout=10)
            executor.recover()
            executor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
