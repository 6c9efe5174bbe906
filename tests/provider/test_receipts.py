"""Signed execution receipts and derived assets: a receipt verifies, and any changed byte of
the receipt, a result file or the on-chain record is named; outputs become a new asset owned
by the consumer only when asked, with provenance and no way to download its files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from atoll.cli.common import console
from atoll.cli.main import app
from atoll.errors import Forbidden
from atoll.models.ddo import ComputePolicy
from atoll.models.job import PublishOutput
from atoll.models.output_policy import OutputPolicy
from atoll.models.receipt import SignedReceipt
from atoll.models.status import JobStatus
from atoll.sdk.verify import check_chain, check_files, check_signature
from atoll.signing import Key
from tests.helpers import Running, require_sandbox, running_provider

CODE = (
    "open('/data/outputs/out.csv', 'w').write('n\\n' + open('/data/inputs/' + "
    "__import__('json').loads(__import__('os').environ['DIDS'])[0] + '/0').read())\n"
)
runner = CliRunner()


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Running]:
    require_sandbox()
    with running_provider(tmp_path / "home") as running:
        yield running


OPEN_DATA = ComputePolicy(allowRawAlgorithm=True, outputPolicy=OutputPolicy(mode="off"))


def finished_job(
    p: Running, tmp: Path, policy: ComputePolicy | None = None, **kw: object
) -> tuple[str, SignedReceipt, Path]:
    did = p.dataset(tmp, price=10, policy=policy)
    agreement = p.consumer.order(did)
    info = p.consumer.wait(
        p.consumer.start(did, rawcode=CODE, agreement_id=agreement, **kw).jobId, timeout=60
    )  # type: ignore[arg-type]
    assert info.status == JobStatus.FINISHED, info.statusText
    p.consumer.wallet.wait_settled(agreement)
    out = tmp / "results"
    p.consumer.download_results(info, out)
    return info.jobId, p.consumer.receipt(info.jobId), out


def test_receipt_verifies_and_every_change_is_named(provider: Running, tmp_path: Path) -> None:
    job_id, signed, out = finished_job(provider, tmp_path)
    contracts = provider.consumer.wallet.contracts
    r = signed.receipt
    assert r.jobId == job_id and r.provider == provider.node.key.address
    assert r.consumer == provider.consumer.key.address
    assert r.algorithm.checksum and r.environment.id == "default" and r.policy.trust == "raw"
    assert r.policy.network == [] and r.results[0].filename == "out.csv"
    assert check_signature(signed) == []
    assert check_chain(signed, contracts) == []
    assert check_files(signed, out) == []

    # any byte of the receipt
    tampered = signed.model_copy(deep=True)
    tampered.receipt.statusText = "Job finished!"
    assert check_signature(tampered)[0].startswith("signature:")
    assert check_chain(tampered, contracts)[0].startswith("chain: agreement")
    # any byte of a result file
    (out / "out.csv").write_text((out / "out.csv").read_text() + " ")
    problems = check_files(signed, out)
    assert len(problems) == 1 and "out.csv" in problems[0]
    # the on-chain record: a receipt the provider signed for an agreement whose record differs
    c = contracts
    did = provider.dataset(
        tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path, name="x", price=10
    )
    aid = provider.consumer.order(did)
    c.fulfil_compute(provider.node.key.private_key, bytes.fromhex(aid[2:]), b"\x01" * 32)
    other = signed.receipt.model_copy(deep=True)
    other.inputs[0].agreementId = aid
    resigned = SignedReceipt.sign(other, Key(provider.node.key.private_key))
    assert check_signature(resigned) == []
    [problem] = check_chain(resigned, contracts)
    assert aid in problem and "01" * 32 in problem


def test_receipt_verify_command(provider: Running, tmp_path: Path) -> None:
    _job, signed, out = finished_job(provider, tmp_path)
    file = tmp_path / "receipt.json"
    file.write_text(json.dumps(signed.model_dump(mode="json")))
    args = ["receipt", "verify", str(file), "--results", str(out), "--provider", provider.url]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert "verifies" in ok.output
    data = json.loads(file.read_text())
    data["receipt"]["results"][0]["sha256"] = "0" * 64
    file.write_text(json.dumps(data))
    bad = runner.invoke(app, args)
    assert bad.exit_code == 1
    assert "signature" in bad.output and "result 0 (out.csv)" in bad.output


def test_derived_asset_chain_and_lineage(provider: Running, tmp_path: Path) -> None:
    con, other = provider.consumer, provider.other
    before = con.search()[0]
    derived_out = PublishOutput(name="Cleaned", description="step one")
    # open data (output checks off), and so is what is made of it: step two copies its input
    job_id, _signed, _out = finished_job(
        provider, tmp_path, policy=OPEN_DATA, publish_output=derived_out
    )
    info = con.status(job_id)
    derived = info.derivedDID
    assert derived.startswith("did:atoll:")
    ddo = con.asset(derived)
    assert ddo.owner == con.key.address
    assert ddo.metadata.provenance is not None
    assert ddo.metadata.provenance.jobId == job_id
    assert ddo.metadata.provenance.inputs == info.inputDID
    assert ddo.metadata.provenance.receipt["receipt"]["jobId"] == job_id
    assert con.wallet.contracts.did_owner(derived) == con.key.address  # on chain, theirs
    assert con.search()[0] == before + 2  # the dataset and the derived asset
    text = json.dumps(ddo.public_json())
    assert str(provider.home) not in text and "location" not in text
    # its files are not downloadable: no access service, not even for its owner
    for client in (con, other, provider.publisher):
        with pytest.raises(Forbidden, match="no access service"):
            client.download(derived, 0)
    # the owner sets its policy like any publisher; another consumer runs a job on it
    with pytest.raises(Forbidden, match="only the owner"):
        other.set_policy(derived, ComputePolicy(allowRawAlgorithm=True))
    con.set_policy(derived, OPEN_DATA)
    step_two_code = (
        "import json, os, shutil\n"
        "did = json.loads(os.environ['DIDS'])[0]\n"
        "shutil.copy(f'/data/inputs/{did}/0', '/data/outputs/again.csv')\n"
    )
    second = other.wait(
        other.start(
            derived, rawcode=step_two_code, publish_output=PublishOutput(name="Step two")
        ).jobId,
        timeout=60,
    )
    assert second.status == JobStatus.FINISHED, second.statusText
    assert other.result(second.jobId, 0).startswith(b"n\n")
    step_two = other.status(second.jobId).derivedDID
    # on a narrow terminal too, every id stands whole on its line, ready to copy
    narrow, console.width = console.width, 60
    try:
        shown = runner.invoke(app, ["assets", "lineage", step_two, "--provider", provider.url])
    finally:
        console.width = narrow
    assert shown.exit_code == 0, shown.output
    for expected in ("Step two", job_id, second.jobId, "Cleaned", info.inputDID[0]):
        assert any(expected in line for line in shown.output.splitlines()), expected


def test_without_publish_output_nothing_is_published(provider: Running, tmp_path: Path) -> None:
    con = provider.consumer
    job_id, _s, _o = finished_job(provider, tmp_path)
    assert con.status(job_id).derivedDID == ""
    assert con.search()[0] == 1  # only the dataset itself
    assert not (provider.home / "derived").exists()


def test_receipt_only_for_the_owner(provider: Running, tmp_path: Path) -> None:
    job_id, _s, _o = finished_job(provider, tmp_path)
    r = httpx.get(provider.url + "/api/services/computeReceipt", params={"jobId": job_id})
    assert r.status_code == 400
    with pytest.raises(Exception, match="no job"):
        provider.other.receipt(job_id)
