"""A closed cluster: only holders of the cluster's certificates reach the scheduler, and a
worker runs Atoll's job function and nothing else."""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from distributed import Client, Security
from distributed.comm import connect

from atoll.cluster.certs import issue, security

from .conftest import Cluster, atoll, free_port, stop


def _connects(address: str, sec: Security, role: str) -> bool:
    return _connects_with(address, sec.get_connection_args(role))


def _connects_with(address: str, args: dict[str, Any]) -> bool:
    async def attempt() -> bool:
        try:
            comm = await connect(address, timeout=5, **args)
        except (OSError, TimeoutError):
            return False
        await comm.close()
        return True

    return asyncio.run(attempt())


def test_a_worker_with_the_clusters_certificate_connects(cluster: Cluster) -> None:
    assert _connects(cluster.address, security(cluster.certs, "worker"), "worker")


def test_a_worker_or_client_of_another_authority_is_refused(
    cluster: Cluster, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    issue(other)
    assert not _connects(cluster.address, security(other, "worker"), "worker")
    assert not _connects(cluster.address, security(other, "client"), "client")
    with pytest.raises((OSError, TimeoutError)):
        Client(cluster.address, security=security(other, "client"), timeout=5)


def test_a_client_without_a_certificate_is_refused(cluster: Cluster) -> None:
    # TLS that trusts the cluster's authority, but shows no certificate of its own
    bare = ssl.create_default_context(cafile=str(cluster.certs / "ca.pem"))
    bare.check_hostname = False
    assert not _connects_with(cluster.address, {"ssl_context": bare})
    # nor in the clear
    plain = cluster.address.replace("tls://", "tcp://")
    assert not _connects(plain, Security(), "client")


def test_a_worker_runs_only_atolls_job_function(cluster: Cluster) -> None:
    with Client(cluster.address, security=security(cluster.certs, "client"), timeout=30) as c:
        future = c.submit(os.getpid, pure=False)
        with pytest.raises(PermissionError, match="only Atoll's jobs"):
            future.result(timeout=60)
        # nor code run outside tasks
        with pytest.raises(Exception, match="only Atoll's jobs"):
            c.run(os.getpid)


def test_the_certificate_keys_are_private(tmp_path: Path) -> None:
    issue(tmp_path / "certs")
    keys = sorted((tmp_path / "certs").glob("*-key.pem"))
    assert [k.name for k in keys] == [
        "ca-key.pem",
        "client-key.pem",
        "scheduler-key.pem",
        "worker-key.pem",
    ]
    assert all(k.stat().st_mode & 0o077 == 0 for k in keys)


def test_a_node_that_cannot_build_the_sandbox_refuses_to_serve(cluster: Cluster) -> None:
    # job uids that overlap nobody's (65534): the sandbox refuses them, so the node refuses jobs
    env_home = cluster.home / "bad"
    env_home.mkdir(exist_ok=True)
    (env_home / "settings.toml").write_text("sandbox_uid_first = 65000\n")
    done = atoll(
        env_home,
        "worker",
        "--scheduler",
        cluster.address,
        "--certs",
        str(cluster.certs),
        "--name",
        "cannot-sandbox",
    )
    assert done.returncode != 0
    assert "this node cannot run jobs" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def _listening(pid: int) -> list[tuple[str, int]]:
    """The addresses ``pid`` listens on over TCP."""
    return [
        (c.laddr.ip, c.laddr.port)
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    ]


def _answers(ip: str, port: int) -> list[int]:
    return [
        httpx.get(f"http://{ip}:{port}{path}", timeout=10).status_code
        for path in ("/info/main/workers.html", "/info/main/logs.html", "/health", "/metrics")
    ]


def test_the_scheduler_serves_nothing_outside_mutual_tls(tmp_path: Path) -> None:
    """Dask's HTTP server (dashboard, logs, call stacks, a proxy to the workers: no TLS, no
    login) is neither reachable from another host nor answering, even on every interface."""
    home, certs = tmp_path / "home", tmp_path / "certs"
    home.mkdir()
    assert atoll(home, "cluster", "certs", "--certs", str(certs)).returncode == 0
    port = free_port()
    proc = Cluster(f"tls://127.0.0.1:{port}", certs, home, {}).start_scheduler(host="0.0.0.0")
    try:
        deadline = time.monotonic() + 60
        while not any(p == port for _, p in _listening(proc.pid)):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.2)
        others = [(ip, p) for ip, p in _listening(proc.pid) if p != port]
        assert others, "Dask's HTTP server was not found: the test would check nothing"
        for ip, other in others:
            assert ip == "127.0.0.1"
            assert _answers(ip, other) == [404] * 4
    finally:
        stop(proc)


def test_a_worker_serves_nothing_outside_mutual_tls(cluster: Cluster) -> None:
    for proc in cluster.workers.values():
        others = _listening(proc.pid)
        assert others, "Dask's HTTP server was not found: the test would check nothing"
        for ip, port in others:
            assert ip == "127.0.0.1"
            # the worker's own comm port speaks Dask's protocol over TLS, not HTTP
            try:
                answers = _answers(ip, port)
            except httpx.HTTPError:
                continue
            assert answers == [404] * 4
