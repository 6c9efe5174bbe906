"""The cluster's scheduler killed (``kill -9``) while paid jobs run and wait on it, then
started again at the same address: no job is lost. The provider's store still holds them as
running; the operator reconnects and sends again, under the same execution id, each job it
has not seen end; the workers join the new scheduler; every job ends once, with one result
set, one receipt and its escrow paid once.

The scheduler and its workers are this module's own (the session's cluster is shared)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.chain.records import ConditionState
from atoll.cluster.certs import security
from atoll.cluster.executor import SCHEDULER_LOST_DETAIL, SCHEDULER_LOST_NOTE, DaskExecutor
from atoll.cluster.wire import execution_id
from atoll.engine.executor import ExitReason, Runtime
from atoll.models.status import JobStatus
from tests.engine.conftest import PYTHON
from tests.engine.executor_conformance import LIMITS, ExecutorConformance, Log
from tests.helpers import Running, require_sandbox, running_provider

from .conftest import Cluster, free_port
from .test_provider_failures import (
    CODE,
    OPEN_DATA,
    PRICE,
    executor_of,
    read_log_until,
    receipts_of,
    tokens,
)

WORKERS = 2


@pytest.fixture
def own_cluster(cluster: Cluster) -> Iterator[tuple[Cluster, list[subprocess.Popen[bytes]]]]:
    """A scheduler (in a list: the test replaces it) and two one-slot workers, with the
    session cluster's certificates."""
    own = Cluster(f"tls://127.0.0.1:{free_port()}", cluster.certs, cluster.home, {})
    schedulers = [own.start_scheduler()]
    try:
        for n in range(WORKERS):
            name = f"test-{os.getpid()}-s{n}"
            own.workers[name] = own.start_worker(name, "--slots", "1")
        own.wait_for_workers(WORKERS)
        yield own, schedulers
    finally:
        procs = [*own.workers.values(), *schedulers]
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def provider(
    own_cluster: tuple[Cluster, list[subprocess.Popen[bytes]]], tmp_path: Path
) -> Iterator[Running]:
    require_sandbox()
    own, _ = own_cluster
    with running_provider(
        tmp_path / "home",
        cluster_scheduler=own.address,
        cluster_certs_dir=str(own.certs),
        job_wall_seconds=120.0,
        max_concurrent_jobs=3,
    ) as running:
        yield running


def test_a_killed_scheduler_started_again_loses_no_job(
    own_cluster: tuple[Cluster, list[subprocess.Popen[bytes]]], provider: Running
) -> None:
    own, schedulers = own_cluster
    pub, con = provider.publisher, provider.consumer
    before = (tokens(pub.wallet), tokens(con.wallet))
    ordered = []
    for n in range(WORKERS + 1):
        did = provider.dataset(name=f"job-{n}", price=PRICE, policy=OPEN_DATA)
        ordered.append((did, con.order(did)))
    # long enough that the first jobs still run when the last is sent
    code = CODE.replace("time.sleep(4)", "time.sleep(8)")
    jobs = [
        (con.start(did, rawcode=code, agreement_id=agreement).jobId, agreement)
        for did, agreement in ordered
    ]
    executor = executor_of(provider)
    # two run (one a worker), the third waits in the scheduler's queue for a slot
    deadline = time.monotonic() + 120
    while True:
        try:
            executions = [executor.attach(execution_id(job_id)) for job_id, _ in jobs]
        except Exception:
            executions = []
        if len([e for e in executions if e.worker is not None]) == WORKERS:
            break
        assert time.monotonic() < deadline, [con.status(j).statusText for j, _ in jobs]
        time.sleep(0.05)
    running = [job_id for (job_id, _), e in zip(jobs, executions, strict=True) if e.worker]
    for job_id in running:
        read_log_until(con, job_id, b"started")
    queued = [e for e in executions if e.worker is None]
    assert len(queued) == 1

    os.kill(schedulers[0].pid, signal.SIGKILL)
    schedulers[0].wait()
    # the store still holds every job as not ended
    for job_id, _ in jobs:
        assert not con.status(job_id).terminal
    schedulers.append(own.start_scheduler())

    for job_id, agreement in jobs:
        info = con.wait(job_id, timeout=240)
        assert info.status == JobStatus.FINISHED, info.statusText
        # one result set, from the attempt that ended
        outputs = sorted(r.filename for r in info.results if r.type == "output")
        assert len([n for n in outputs if n.startswith("attempt-")]) == 1, outputs
        assert "result.txt" in outputs
        log = b"".join(con.logs(job_id))
        assert log.count(b"ended") == 1
        if job_id in running:
            assert SCHEDULER_LOST_NOTE.strip() in log
        # the same execution, sent again
        ws = provider.node.operator.engine.workspace(job_id)  # type: ignore[union-attr]
        recorded = ws.recorded_execution()
        assert recorded is not None and recorded[0] == execution_id(job_id)
        assert con.receipt(job_id).receipt.jobId == job_id
        assert receipts_of(provider, job_id) == 1
        assert len(provider.node.authorizer.ledger.manifests(agreement)) == 1
        settled = con.wallet.wait_settled(agreement, timeout=60)
        assert settled.compute.state is ConditionState.FULFILLED
    # each escrow paid once
    paid = PRICE * len(jobs)
    assert (tokens(pub.wallet), tokens(con.wallet)) == (before[0] + paid, before[1] - paid)
    # the workers joined the new scheduler: the cluster keeps its nodes
    own.wait_for_workers(WORKERS)


def test_a_job_whose_scheduler_does_not_come_back_ends_lost(
    own_cluster: tuple[Cluster, list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    own, schedulers = own_cluster
    executor = DaskExecutor(
        own.address,
        security(own.certs, "client"),
        job_uid=200_000,
        connect_timeout=2,
        reconnect_timeout=3,
    )
    code = "import time\nprint('started', flush=True)\ntime.sleep(120)"
    spec = ExecutorConformance().spec(tmp_path, Runtime(PYTHON), code, limits=LIMITS)
    log = Log()
    try:
        execution = executor.start(spec, log)
        assert log.wait_for(b"started")
        os.kill(schedulers[0].pid, signal.SIGKILL)
        schedulers[0].wait()
        result = execution.wait()
        # the provider's failure (the runner makes it an interrupted, refunded job)
        assert result.reason is ExitReason.LOST
        assert result.detail == SCHEDULER_LOST_DETAIL
        execution.release()
    finally:
        executor.close()
