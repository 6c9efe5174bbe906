"""A real closed Dask cluster on loopback for the whole session: the cluster's certificates,
a scheduler and three ``atoll worker`` processes, each with its own sandbox, started through
the ``atoll`` command as an operator would start them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from distributed import Client

from atoll.cluster.certs import security
from atoll.cluster.executor import DaskExecutor
from atoll.engine.sandbox.stage import DEFAULT_STAGE_ROOT
from tests.engine.conftest import sandbox_unavailable_reason, skip_or_fail

WORKERS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a worker as an operator would (SIGTERM: it clears its sandbox), killing it if it
    takes longer than half a minute."""
    proc.terminate()
    _ended(proc, 30)


@dataclass
class Cluster:
    address: str
    certs: Path
    home: Path
    workers: dict[str, subprocess.Popen[bytes]]

    def env(self) -> dict[str, str]:
        return {**os.environ, "ATOLL_HOME": str(self.home)}

    def start_scheduler(self, host: str = "127.0.0.1") -> subprocess.Popen[bytes]:
        """``atoll cluster scheduler`` at the cluster's port, listening on ``host``."""
        port = self.address.rsplit(":", 1)[1]
        return subprocess.Popen(
            [
                sys.executable,
                *("-m", "atoll", "cluster", "scheduler"),
                *("--certs", str(self.certs), "--host", host, "--port", port),
            ],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_for_workers(self, count: int) -> None:
        """Until ``count`` workers have joined the scheduler (failing with the stderr of a
        worker that exited instead)."""
        with Client(self.address, security=security(self.certs, "client"), timeout=60) as client:
            deadline = time.monotonic() + 120
            while len(client.scheduler_info(n_workers=-1)["workers"]) < count:
                dead = [w for w in self.workers.values() if w.poll() is not None]
                if dead:
                    pytest.fail(f"a worker did not start: {self.stderr(dead[0])}")
                assert time.monotonic() < deadline, "the workers did not join"
                time.sleep(0.2)

    def start_worker(self, name: str, *extra: str) -> subprocess.Popen[bytes]:
        logs = self.home / "worker-logs"
        logs.mkdir(exist_ok=True)
        # a file, not a pipe: nobody reads a pipe while the session runs, and a worker whose
        # log filled it would block on its next line
        with (logs / f"{name}.stderr").open("ab") as stderr:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "atoll",
                    "worker",
                    "--scheduler",
                    self.address,
                    "--certs",
                    str(self.certs),
                    "--name",
                    name,
                    "--slots",
                    "2",
                    "--memory-mb",
                    "4096",
                    *extra,
                ],
                env=self.env(),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def stderr(self, proc: subprocess.Popen[bytes]) -> str:
        """What a worker this cluster started wrote to its stderr, the last 4 KB."""
        name = proc.args[proc.args.index("--name") + 1]  # type: ignore[union-attr,index]
        text = (self.home / "worker-logs" / f"{name}.stderr").read_text(errors="replace")
        return text[-4096:]


def atoll(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atoll", *args],
        env={**os.environ, "ATOLL_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = sandbox_unavailable_reason()
    if reason:
        skip_or_fail(reason)
    root = tmp_path_factory.mktemp("cluster")
    home, certs = root / "home", root / "certs"
    home.mkdir()
    done = atoll(home, "cluster", "certs", "--certs", str(certs))
    assert done.returncode == 0, done.stderr
    cluster = Cluster(f"tls://127.0.0.1:{free_port()}", certs, home, {})
    scheduler = cluster.start_scheduler()
    try:
        for n in range(WORKERS):
            name = f"test-{os.getpid()}-w{n}"
            cluster.workers[name] = cluster.start_worker(name)
        cluster.wait_for_workers(WORKERS)
        yield cluster
    finally:
        # the workers first, then their scheduler: a worker that saw its scheduler go before
        # its own stop would try to join it again
        for proc in cluster.workers.values():
            proc.terminate()
        killed = [name for name, proc in cluster.workers.items() if not _ended(proc, 30)]
        scheduler.terminate()
        _ended(scheduler, 30)
    # a stopped worker clears its sandbox: no job cgroup or staging directory is left
    stages = DEFAULT_STAGE_ROOT
    left = [p.name for p in stages.glob(f"atoll-dask-test-{os.getpid()}-*")]
    assert left == [], (killed, {n: cluster.stderr(p) for n, p in cluster.workers.items()})


def _ended(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether ``proc`` ended within ``timeout`` seconds; killed if not."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False
    return True


@pytest.fixture(scope="session")
def dask_executor(cluster: Cluster) -> Iterator[DaskExecutor]:
    """The operator's side: a Dask executor with the cluster's client certificate."""
    executor = DaskExecutor(cluster.address, security(cluster.certs, "client"), job_uid=200_000)
    executor.check()
    yield executor
    executor.close()


@dataclass
class BigWorker:
    """An extra worker with more memory than the session's three advertise, so that a job
    asking for more than theirs runs only there, and with its /metrics served."""

    name: str
    proc: subprocess.Popen[bytes]
    metrics_url: str


#: memory a job asks for so that only the big worker can take it (the others have 4096)
BIG_JOB_MB = 8192


@pytest.fixture
def big_worker(cluster: Cluster, dask_executor: DaskExecutor) -> Iterator[BigWorker]:
    name = f"test-{os.getpid()}-big-{free_port()}"
    port = free_port()
    proc = cluster.start_worker(name, "--memory-mb", "65536", "--metrics-port", str(port))
    try:
        deadline = time.monotonic() + 120
        while not any(
            w.get("name") == name
            for w in dask_executor.client.scheduler_info(n_workers=-1)["workers"].values()
        ):
            if proc.poll() is not None:
                pytest.fail(f"the worker did not start: {cluster.stderr(proc)}")
            assert time.monotonic() < deadline, "the worker did not join"
            time.sleep(0.2)
        yield BigWorker(name, proc, f"http://127.0.0.1:{port}/metrics")
    finally:
        stop(proc)


@dataclass
class Holder:
    """A fourth worker, for one test module: it holds a data root (``--data-root``) and runs
    jobs in a job directory of its own (``--jobs-dir``), not the operator's paths."""

    name: str
    address: str
    data_root: Path
    jobs_dir: Path


@pytest.fixture(scope="module")
def holder(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Holder]:
    from distributed import Client

    from tests.helpers import public_dir

    data_root = public_dir()
    jobs_dir = tmp_path_factory.mktemp("holder-jobs")
    name = f"test-{os.getpid()}-holder"
    proc = cluster.start_worker(name, "--data-root", str(data_root), "--jobs-dir", str(jobs_dir))
    try:
        with Client(cluster.address, security=security(cluster.certs, "client")) as client:
            deadline = time.monotonic() + 120
            while True:
                found = [
                    a
                    for a, w in client.scheduler_info(n_workers=-1)["workers"].items()
                    if w["name"] == name
                ]
                if found:
                    break
                assert proc.poll() is None, cluster.stderr(proc)
                assert time.monotonic() < deadline, "the holder did not join"
                time.sleep(0.2)
        yield Holder(name, found[0], data_root, jobs_dir)
    finally:
        stop(proc)
