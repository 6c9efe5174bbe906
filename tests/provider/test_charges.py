"""Who pays for what: the job's own failures are delivered compute and charged, the
provider's failures are refunded at once; a job that did not deliver serves nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.chain.records import ConditionState
from atoll.errors import Forbidden
from atoll.models.status import JobStatus
from atoll.sdk.wallet import Wallet
from tests.helpers import Running, require_sandbox, running_provider

TOKEN = 10**18

# prints its "result", then leaves an output tree deeper than PATH_MAX
DEEP = """
import os
print("the answer is 42", flush=True)
os.chdir("/data/outputs")
for _ in range(2500):
    os.mkdir("d")
    os.chdir("d")
"""


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Running]:
    require_sandbox()
    with running_provider(tmp_path / "home") as running:
        yield running


def tokens(w: Wallet) -> int:
    return w.balances()["tokens"]


def served_nothing(p: Running, job_id: str) -> None:
    with pytest.raises(Forbidden, match="nothing of it is served"):
        b"".join(p.consumer.logs(job_id))
    with pytest.raises(Forbidden, match="nothing of it is served"):
        p.consumer.result(job_id, 0)


def test_a_job_that_breaks_its_own_output_tree_is_charged(
    provider: Running, tmp_path: Path
) -> None:
    """A tree deeper than PATH_MAX once failed publishing and refunded the consumer while its
    log was served: free compute. Now what the job broke is left out and the job is charged."""
    pub, con = provider.publisher, provider.consumer
    did = provider.dataset(tmp_path, price=2 * TOKEN)
    before = (tokens(pub.wallet), tokens(con.wallet))
    agreement = con.order(did)
    info = con.wait(con.start(did, rawcode=DEEP, agreement_id=agreement).jobId, timeout=120)
    assert info.status == JobStatus.FINISHED, info.statusText
    assert "skipped 1 file" in info.statusText
    assert [r for r in info.results if r.type == "output"] == []
    settled = con.wallet.wait_settled(agreement, timeout=30)
    assert settled.compute.state is ConditionState.FULFILLED
    assert (tokens(pub.wallet), tokens(con.wallet)) == (
        before[0] + 2 * TOKEN,
        before[1] - 2 * TOKEN,
    )
    # the one job of the agreement was used: no second one runs for free
    with pytest.raises(Forbidden, match=r"already settled|all are used"):
        con.start(did, rawcode="print(1)", agreement_id=agreement)


def test_data_provisioning_failure_refunds_at_once_and_serves_nothing(
    provider: Running, tmp_path: Path
) -> None:
    pub, con = provider.publisher, provider.consumer
    did = provider.dataset(tmp_path, price=3 * TOKEN)
    files = provider.node.context.publishing.assets.files(did)
    before = (tokens(pub.wallet), tokens(con.wallet))
    agreement = con.order(did)
    assert tokens(con.wallet) == before[1] - 3 * TOKEN
    # a start checks the files before anything is paid; they go while the job is queued
    # behind two others that hold every slot
    free = provider.dataset(tmp_path, name="free")
    blockers = [con.start(free, rawcode="import time; time.sleep(60)") for _ in range(2)]
    job = con.start(did, rawcode="print(1)", agreement_id=agreement)
    for f in files:
        Path(f.location).unlink()  # the provider can no longer deliver: its data is gone
    for b in blockers:
        con.stop(b.jobId)
    info = con.wait(job.jobId, timeout=60)
    assert info.status == JobStatus.DATA_PROVISIONING_FAILED
    # no time travel: the refund comes at once, long before the agreement's hour is up
    settled = con.wallet.wait_settled(agreement, timeout=10)
    assert settled.compute.state is ConditionState.ABORTED
    assert settled.escrow.state is ConditionState.ABORTED
    assert (tokens(pub.wallet), tokens(con.wallet)) == before
    served_nothing(provider, info.jobId)
