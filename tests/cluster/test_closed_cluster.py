"""A closed cluster: only holders of the cluster's certificates reach the scheduler, and a
worker runs Atoll's job function and nothing else."""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, Security
from distributed.comm import connect

from atoll.cluster.certs import issue, security

from .conftest import Cluster, atoll


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
