"""Certificates of another cluster are named as such at once, where Dask would wait for ever
without a word of why; a scheduler that does not answer yet is no error."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from atoll.cluster.certs import Role, issue, security
from atoll.cluster.executor import DaskExecutor
from atoll.cluster.reach import CertificateRefused, check_certificates
from atoll.engine.executor import SandboxUnavailable

from .conftest import Cluster, atoll, free_port


@pytest.fixture
def other(tmp_path: Path) -> Path:
    issue(tmp_path / "other")
    return tmp_path / "other"


def test_the_cluster_s_own_certificates_pass(cluster: Cluster) -> None:
    roles: tuple[Role, ...] = ("worker", "client")
    for role in roles:
        check_certificates(cluster.address, security(cluster.certs, role), role)


def test_another_authority_s_certificates_are_named(cluster: Cluster, other: Path) -> None:
    with pytest.raises(CertificateRefused, match="not of this cluster's authority"):
        check_certificates(cluster.address, security(other, "worker"), "worker")


def test_a_certificate_the_scheduler_refuses_is_named(
    cluster: Cluster, other: Path, tmp_path: Path
) -> None:
    # this cluster's authority, so the scheduler is trusted, but a worker certificate of
    # another's, which the scheduler does not take
    mixed = tmp_path / "mixed"
    shutil.copytree(other, mixed)
    shutil.copy(cluster.certs / "ca.pem", mixed / "ca.pem")
    with pytest.raises(CertificateRefused, match="refused this worker's certificate"):
        check_certificates(cluster.address, security(mixed, "worker"), "worker")


def test_a_scheduler_that_does_not_answer_yet_is_no_error(other: Path) -> None:
    check_certificates(f"tls://127.0.0.1:{free_port()}", security(other, "worker"), "worker")


def test_a_worker_with_another_cluster_s_certificates_says_so_and_ends(
    cluster: Cluster, other: Path
) -> None:
    done = atoll(
        cluster.home,
        *("worker", "--scheduler", cluster.address, "--certs", str(other), "--name", "stray"),
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: the scheduler's certificate is not of this cluster's authority: copy the "
        "certificates 'atoll cluster certs' made for this cluster (see --certs)"
    ]


def test_a_provider_with_another_cluster_s_certificates_tells_its_operator_only(
    cluster: Cluster, other: Path, caplog: pytest.LogCaptureFixture
) -> None:
    executor = DaskExecutor(cluster.address, security(other, "client"), connect_timeout=2)
    try:
        with (
            caplog.at_level(logging.ERROR, logger="atoll.cluster.executor"),
            pytest.raises(SandboxUnavailable) as refused,
        ):
            executor.check()
        # the consumer's words name no certificate; the operator's log does
        assert str(refused.value) == "the cluster's scheduler cannot be reached"
        assert any("not of this cluster's authority" in r.getMessage() for r in caplog.records)
    finally:
        executor.close()
