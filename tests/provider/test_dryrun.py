"""Dry runs end to end with the real sandbox: a job on the dataset's mock data with no
agreement and no payment, every output and log and the check report shown, the real file
never mounted, the algorithm policy applied, and free compute rate-limited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atoll import signing
from atoll.errors import Forbidden, NotFound, RateLimited
from atoll.models.ddo import ComputePolicy
from atoll.models.status import JobStatus
from tests.helpers import Running, require_sandbox, running_provider

REAL = "name,age\nAlice Real,41\nBob Real,37\n"
MOCK = "name,age\nmock-1,40\nmock-2,50\nmock-3,60\n"

#: reads its input whole: copies it to an output, prints it, and writes a small summary
COPIER = """
import json, os
did = json.loads(os.getenv("DIDS"))[0]
text = open(f"/data/inputs/{did}/0").read()
open("/data/outputs/copy.csv", "w").write(text)
print(text, end="")
json.dump({"rows": len(text.splitlines()) - 1}, open("/data/outputs/summary.json", "w"))
print("inputs:", sorted(os.listdir(f"/data/inputs/{did}")))
"""


@pytest.fixture(autouse=True)
def _sandbox() -> None:
    require_sandbox()


def with_mock(provider: Running, policy: ComputePolicy | None = None) -> str:
    did = provider.dataset(text=REAL, policy=policy)
    provider.publisher.mock_attach(did, MOCK)
    return did


def test_dry_run_needs_no_agreement_and_shows_outputs_logs_and_report(
    provider: Running,
) -> None:
    did = with_mock(provider)
    consumer = provider.consumer
    chain = provider.node.chain.chain
    head = chain.block_number()
    balances = consumer.wallet.balances()

    info = consumer.dryrun_start(did, rawcode=COPIER)
    status = consumer.dryrun_wait(info.jobId, timeout=60)

    assert status.job.status == JobStatus.FINISHED, status.job.statusText
    assert consumer.key is not None and status.job.owner == consumer.key.address
    assert status.job.agreements == [] and status.job.agreementId == ""
    names = {r.filename: r for r in status.job.results}
    assert {"copy.csv", "summary.json", "algorithm.log"} <= set(names)
    assert json.loads(consumer.dryrun_result(info.jobId, names["summary.json"].index)) == {
        "rows": 3
    }
    log = consumer.dryrun_result(info.jobId, names["algorithm.log"].index).decode()
    assert "mock-1,40" in log
    # the check report a real job would get: one entry per output and log, and its digest
    assert status.report is not None
    reported = {f["index"] for f in status.report["files"]}
    assert reported == {r.index for r in status.job.results}
    assert len(status.report["digest"]) == 64
    # the copy of the input is what a real job would have held, and says why
    assert names["copy.csv"].index in status.held
    (copy,) = [f for f in status.report["files"] if f["index"] == names["copy.csv"].index]
    assert "echo" in {x["check"] for x in copy["findings"]}
    # no transaction, no payment, and not a job of the consumer's agreements
    assert chain.block_number() == head
    assert consumer.wallet.balances() == balances
    assert info.jobId not in {j.jobId for j in consumer.jobs()}
    with pytest.raises(NotFound):
        consumer.status(info.jobId)
    with pytest.raises(NotFound):
        consumer.receipt(info.jobId)


def test_dry_run_never_sees_the_real_data(provider: Running) -> None:
    did = with_mock(provider)
    info = provider.consumer.dryrun_start(did, rawcode=COPIER)
    status = provider.consumer.dryrun_wait(info.jobId, timeout=60)
    assert status.job.status == JobStatus.FINISHED, status.job.statusText
    every = b"".join(
        provider.consumer.dryrun_result(info.jobId, r.index) for r in status.job.results
    ).decode()
    copy = next(r for r in status.job.results if r.filename == "copy.csv")
    assert provider.consumer.dryrun_result(info.jobId, copy.index).decode() == MOCK
    assert "Real" not in every and "41" not in every
    assert "inputs: ['0']" in every  # the mock is the dataset's only file


def test_a_dry_run_is_its_consumers_only(provider: Running) -> None:
    did = with_mock(provider)
    info = provider.consumer.dryrun_start(did, rawcode="print('hi')")
    provider.consumer.dryrun_wait(info.jobId, timeout=60)
    with pytest.raises(NotFound):
        provider.other.dryrun_status(info.jobId)
    with pytest.raises(NotFound):
        provider.other.dryrun_result(info.jobId, 0)
    with pytest.raises(NotFound):
        provider.other.dryrun_delete(info.jobId)
    assert provider.consumer.dryrun_delete(info.jobId).removed
    with pytest.raises(NotFound):
        provider.consumer.dryrun_result(info.jobId, 0)


def test_dry_run_follows_the_datasets_algorithm_policy(provider: Running) -> None:
    did = with_mock(provider, ComputePolicy(allowRawAlgorithm=False))
    with pytest.raises(Forbidden, match="does not allow raw algorithms"):
        provider.consumer.dryrun_start(did, rawcode="print('hi')")


def test_dry_run_needs_offered_mock_data(provider: Running) -> None:
    did = provider.dataset(text=REAL)
    with pytest.raises(NotFound, match="no mock data"):
        provider.consumer.dryrun_start(did, rawcode="print('hi')")
    provider.publisher.mock_infer(did)  # proposed, not approved: still nothing
    with pytest.raises(NotFound, match="no mock data"):
        provider.consumer.dryrun_start(did, rawcode="print('hi')")
    with pytest.raises(NotFound):
        provider.consumer.dryrun_start("did:atoll:" + "0" * 64, rawcode="print('hi')")


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Running]:
    with running_provider(
        tmp_path / "home", dry_run_rate_limit="2/minute", dry_run_concurrency=1
    ) as running:
        yield running


def test_dry_runs_are_rate_limited_per_address(limited: Running) -> None:
    did = with_mock(limited)
    for _ in range(2):
        info = limited.consumer.dryrun_start(did, rawcode="print('hi')")
        limited.consumer.dryrun_wait(info.jobId, timeout=60)
    with pytest.raises(RateLimited, match="at most 2 per minute") as refused:
        limited.consumer.dryrun_start(did, rawcode="print('hi')")
    assert refused.value.status_code == 429 and 0 < refused.value.retry_after <= 60
    # another address has its own allowance
    info = limited.other.dryrun_start(did, rawcode="print('hi')")
    limited.other.dryrun_wait(info.jobId, timeout=60)


def test_concurrent_dry_runs_are_capped(limited: Running) -> None:
    did = with_mock(limited)
    # outlives the test: the provider's shutdown ends it
    limited.consumer.dryrun_start(did, rawcode="import time\ntime.sleep(600)")
    key = limited.other.key
    assert key is not None
    body = {
        "dataset": {"did": did, "agreementId": ""},
        "additionalDatasets": [],
        "algorithm": {"did": "", "rawcode": "print('hi')"},
        "parameters": {},
        "environment": "default",
        "resources": None,
    }
    nonce = key.next_nonce()
    text = signing.message("dryrun", key.address, did, signing.body_digest(body), nonce)
    r = httpx.post(
        f"{limited.url}/api/services/dryrun",
        json={**body, "consumerAddress": key.address, "nonce": nonce, "signature": key.sign(text)},
    )
    assert r.status_code == 429, r.text
    assert "running" in r.json()["error"]
    assert int(r.headers["retry-after"]) > 0


def test_a_dry_run_is_checked_in_the_node_s_checks_process(provider: Running) -> None:
    """Its checks run where a real job's do, beside the server, not in it."""
    import os

    checker = provider.node.context.reviews().checker
    assert provider.node.context.dryruns.checker is checker
    did = with_mock(provider)
    info = provider.consumer.dryrun_start(did, rawcode=COPIER)
    status = provider.consumer.dryrun_wait(info.jobId, timeout=60)
    assert status.report is not None
    assert checker.running() not in (None, os.getpid())
