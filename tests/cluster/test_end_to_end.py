"""The whole flow through the Dask backend: a provider whose engine sends its jobs to the
test cluster (``cluster_scheduler`` and the cluster's client certificate, as an operator
configures it) publishes a priced dataset, a consumer orders it (agreement, payment locked in
escrow), the job runs on an ``atoll worker``, the consumer reads its result and log, and the
keeper settles the escrow to the publisher, once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.chain.records import ConditionState
from atoll.cluster.executor import DaskExecutor
from atoll.errors import Forbidden
from atoll.models.status import JobStatus
from tests.helpers import OPEN_DATA, Running, running_provider

from .conftest import Cluster

TOKEN = 10**18

CODE = """
import os, socket
rows = open('/data/inputs/' + __import__('json').loads(os.environ['DIDS'])[0] + '/0').read()
open('/data/outputs/out.csv', 'w').write(rows.upper())
open('/data/logs/note.txt', 'w').write('seen')
print('rows', len(rows.splitlines()), flush=True)
"""


@pytest.fixture
def provider(cluster: Cluster, tmp_path: Path) -> Iterator[Running]:
    with running_provider(
        tmp_path / "home",
        cluster_scheduler=cluster.address,
        cluster_certs_dir=str(cluster.certs),
        cluster_start_timeout=120.0,
    ) as running:
        yield running


def test_an_ordered_job_runs_on_the_cluster_and_its_escrow_is_settled_once(
    provider: Running, cluster: Cluster
) -> None:
    operator = provider.node.operator
    assert operator is not None
    executor = operator.engine.executor
    assert isinstance(executor, DaskExecutor)
    pub, con = provider.publisher, provider.consumer
    did = provider.dataset(text="a,b\n1,2\n", price=2 * TOKEN, policy=OPEN_DATA)
    before = (pub.wallet.balances()["tokens"], con.wallet.balances()["tokens"])
    agreement = con.order(did)
    assert con.wallet.balances()["tokens"] == before[1] - 2 * TOKEN
    info = con.wait(con.start(did, rawcode=CODE, agreement_id=agreement).jobId, timeout=180)
    assert info.status == JobStatus.FINISHED, info.statusText
    # it ran on a worker of the cluster, through the scheduler
    record = operator.engine.workspace(info.jobId).recorded_execution()
    assert record is not None and record[0] == f"dask/job-{info.jobId}"
    names = {r.filename: i for i, r in enumerate(info.results)}
    assert con.result(info.jobId, names["out.csv"]) == b"A,B\n1,2\n"
    assert b"rows 2" in b"".join(con.logs(info.jobId))
    settled = con.wallet.wait_settled(agreement, timeout=60)
    assert settled.compute.state is ConditionState.FULFILLED
    assert settled.escrow.state is ConditionState.FULFILLED
    after = (pub.wallet.balances()["tokens"], con.wallet.balances()["tokens"])
    assert after == (before[0] + 2 * TOKEN, before[1] - 2 * TOKEN)
    # settled once: the agreement's one job is used, and nothing more moves
    with pytest.raises(Forbidden, match=r"already settled|all are used"):
        con.start(did, rawcode="print(1)", agreement_id=agreement)
    assert (pub.wallet.balances()["tokens"], con.wallet.balances()["tokens"]) == after
