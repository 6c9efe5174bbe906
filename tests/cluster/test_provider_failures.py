"""Failures across machines, seen from the consumer of a real provider whose jobs run on the
session's Dask cluster: a worker killed (``kill -9``) in the middle of a paid job, a stop that
must reach the sandbox on the remote worker, and the job's log streamed live from the worker
that runs it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from sqlalchemy import func, select

from atoll.chain.records import ConditionState
from atoll.cluster.executor import LOST_DETAIL, LOST_NOTE, DaskExecutor
from atoll.cluster.wire import execution_id
from atoll.db.schema import job_outcomes
from atoll.models.ddo import ComputePolicy
from atoll.models.output_policy import OutputPolicy
from atoll.models.status import JobStatus
from atoll.sdk.client import ProviderClient
from atoll.sdk.wallet import Wallet
from tests.helpers import Running, require_sandbox, running_provider

from .conftest import Cluster
from .test_worker_loss import _replace, _worker_name

TOKEN = 10**18
PRICE = 2 * TOKEN

# each attempt leaves a file of its own; only the attempt that ends may reach the results
CODE = """
import os, time
open('/data/outputs/attempt-' + str(os.getpid()) + '-' + str(time.time()), 'w').write('x')
print('started', flush=True)
time.sleep(4)
open('/data/outputs/result.txt', 'w').write('done')
print('ended', flush=True)
"""

#: unchecked data: the job's log is served as it is written
OPEN_DATA = ComputePolicy(allowRawAlgorithm=True, outputPolicy=OutputPolicy(mode="off"))

SLEEPER = """
import time
print('first line', flush=True)
time.sleep(120)
"""


@pytest.fixture(scope="module")
def provider(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    require_sandbox()
    home = tmp_path_factory.mktemp("provider") / "home"
    with running_provider(
        home,
        cluster_scheduler=cluster.address,
        cluster_certs_dir=str(cluster.certs),
        job_wall_seconds=120.0,
    ) as running:
        yield running


def executor_of(p: Running) -> DaskExecutor:
    assert p.node.operator is not None
    executor = p.node.operator.engine.executor
    assert isinstance(executor, DaskExecutor)
    return executor


def tokens(w: Wallet) -> int:
    return w.balances()["tokens"]


def read_log_until(client: ProviderClient, job_id: str, text: bytes) -> bytes:
    """Follow the job's log through the provider's log route until ``text`` comes."""
    seen = b""
    deadline = time.monotonic() + 120
    while text not in seen:
        assert time.monotonic() < deadline, f"the log never showed {text!r}: {seen!r}"
        seen = b""
        for chunk in client.logs(job_id, follow=True):
            seen += chunk
            if text in seen:
                break
    return seen


def worker_running(p: Running, job_id: str) -> str:
    execution = executor_of(p).attach(execution_id(job_id))
    deadline = time.monotonic() + 60
    while execution.worker is None:
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.05)
    return execution.worker


def kill_worker(cluster: Cluster, p: Running, address: str) -> str:
    name = _worker_name(executor_of(p), address)
    os.kill(cluster.workers[name].pid, signal.SIGKILL)
    cluster.workers[name].wait()
    return name


def receipts_of(p: Running, job_id: str) -> int:
    with p.node.db.connect() as conn:
        count = conn.execute(
            select(func.count()).select_from(job_outcomes).where(job_outcomes.c.job_id == job_id)
        ).scalar_one()
    return int(count)


def test_a_paid_job_whose_worker_is_killed_finishes_on_another_and_is_paid_once(
    cluster: Cluster, provider: Running, tmp_path: Path
) -> None:
    pub, con = provider.publisher, provider.consumer
    did = provider.dataset(name="once", price=PRICE, policy=OPEN_DATA)
    agreement = con.order(did)
    before = (tokens(pub.wallet), tokens(con.wallet))
    job_id = con.start(did, rawcode=CODE, agreement_id=agreement).jobId
    killed: list[str] = []
    try:
        read_log_until(con, job_id, b"started")
        first = worker_running(provider, job_id)
        killed.append(kill_worker(cluster, provider, first))

        info = con.wait(job_id, timeout=180)
        assert info.status == JobStatus.FINISHED, info.statusText
        # the same execution, run again elsewhere: the id the workspace recorded is its own
        ws = provider.node.operator.engine.workspace(job_id)  # type: ignore[union-attr]
        recorded = ws.recorded_execution()
        assert recorded is not None and recorded[0] == execution_id(job_id)
        # one result set: the attempt that ended, nothing of the one that died
        outputs = sorted(r.filename for r in info.results if r.type == "output")
        assert len([n for n in outputs if n.startswith("attempt-")]) == 1, outputs
        assert "result.txt" in outputs
        out = tmp_path / "results"
        con.download_results(info, out)
        assert (out / "result.txt").read_text() == "done"
        log = b"".join(con.logs(job_id))
        assert LOST_NOTE.strip() in log
        assert log.count(b"ended") == 1
        # one receipt, one delivery on the agreement, the escrow paid once
        signed = con.receipt(job_id)
        assert signed.receipt.jobId == job_id
        assert receipts_of(provider, job_id) == 1
        assert len(provider.node.authorizer.ledger.manifests(agreement)) == 1
        settled = con.wallet.wait_settled(agreement, timeout=60)
        assert settled.compute.state is ConditionState.FULFILLED
        assert (tokens(pub.wallet), tokens(con.wallet)) == (before[0] + PRICE, before[1])
    finally:
        _replace(cluster, executor_of(provider), *killed)


def test_a_paid_job_whose_workers_keep_dying_is_interrupted_and_refunded(
    cluster: Cluster, provider: Running
) -> None:
    pub, con = provider.publisher, provider.consumer
    did = provider.dataset(name="lost", price=PRICE, policy=OPEN_DATA)
    before_order = tokens(con.wallet)
    agreement = con.order(did)
    before = (tokens(pub.wallet), tokens(con.wallet))
    assert before[1] == before_order - PRICE
    job_id = con.start(did, rawcode=CODE, agreement_id=agreement).jobId
    killed: list[str] = []
    addresses: list[str | None] = [None]
    try:
        # the scheduler allows two attempts: the workers of both die
        read_log_until(con, job_id, b"started")
        execution = executor_of(provider).attach(execution_id(job_id))
        for _ in (1, 2):
            deadline = time.monotonic() + 120
            while execution.worker in addresses:
                assert time.monotonic() < deadline, "the job did not start again"
                time.sleep(0.05)
            address = execution.worker
            assert address is not None
            addresses.append(address)
            killed.append(kill_worker(cluster, provider, address))
        info = con.wait(job_id, timeout=180)
        # the provider's failure, said as such, and not the job's
        assert info.status == JobStatus.INTERRUPTED, info.statusText
        assert info.statusText == LOST_DETAIL
        assert [r for r in info.results if r.type == "output"] == []
        assert provider.node.authorizer.ledger.manifests(agreement) == []
        settled = con.wallet.wait_settled(agreement, timeout=60)
        assert settled.compute.state is ConditionState.ABORTED
        # refunded once: the consumer has the price back, the publisher got nothing
        assert (tokens(pub.wallet), tokens(con.wallet)) == (before[0], before[1] + PRICE)
    finally:
        _replace(cluster, executor_of(provider), *killed)


def job_processes(job_id: str) -> list[psutil.Process]:
    """The job's sandbox on this host: the bubblewrap processes whose command line names the
    job's directory, and every process below them."""
    found: list[psutil.Process] = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if (
            cmdline
            and os.path.basename(cmdline[0]) == "bwrap"
            and any(job_id in arg for arg in cmdline)
        ):
            found.append(proc)
            try:
                found.extend(proc.children(recursive=True))
            except psutil.NoSuchProcess:
                continue
    return found


def gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_log_streams_live_from_the_worker_and_a_stop_kills_the_remote_sandbox(
    provider: Running,
) -> None:
    con = provider.consumer
    did = provider.dataset(name="live", policy=OPEN_DATA)
    job_id = con.start(did, rawcode=SLEEPER).jobId
    # the first line comes through the provider's log route while the job still runs
    seen = read_log_until(con, job_id, b"first line")
    assert b"first line" in seen
    status = con.status(job_id)
    assert status.status == JobStatus.RUNNING, status.statusText
    worker = worker_running(provider, job_id)
    assert worker
    processes = job_processes(job_id)
    assert processes, "the job's sandbox is not running on this host"
    stopped = time.monotonic()
    con.stop(job_id)
    deadline = time.monotonic() + 60
    while not all(gone(p) for p in processes):
        assert time.monotonic() < deadline, "the job's processes outlived its stop"
        time.sleep(0.01)
    print(f"stop to sandbox gone: {(time.monotonic() - stopped) * 1000:.0f} ms")
    info = con.wait(job_id, timeout=60)
    assert info.status == JobStatus.STOPPED
