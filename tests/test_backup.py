"""``atoll backup`` under load and ``atoll restore``: a node whose store and chain were lost
comes back from the backup serving every job and agreement it had, and its escrow still
settles."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from atoll.backup import take_backup
from atoll.chain.ledger import AgreementLedger
from atoll.chain.records import ConditionState
from atoll.config import load_settings
from atoll.errors import ConfigError
from atoll.models.ddo import ComputePolicy, Metadata
from atoll.models.status import JobStatus
from atoll.sdk import ProviderClient
from atoll.signing import Key
from tests.helpers import public_dir, require_sandbox, running_provider

PRICE = 10**18


def atoll(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ATOLL_HOME": str(home)}
    env.pop("ATOLL_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "atoll", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_backup_under_load_restores_every_job_and_agreement(tmp_path: Path) -> None:
    require_sandbox()
    home = tmp_path / "home"
    consumer_key = Key.generate()
    backup = tmp_path / "backup"
    # a data root of its own: each provider run's default root goes with the run
    data_root = public_dir()
    (data_root / "d.csv").write_text("a\n1\n")
    (data_root / "d.csv").chmod(0o644)
    with running_provider(home, extra_roots=(str(data_root),)) as node:
        con = ProviderClient(node.url, consumer_key)
        con.faucet()
        did = node.publisher.publish(
            Metadata(name="d", type="dataset"),
            [str(data_root / "d.csv")],
            ComputePolicy(allowRawAlgorithm=True),
            price=PRICE,
        ).id
        used = con.order(did)
        paid = con.wait(con.start(did, rawcode="print('paid')", agreement_id=used).jobId, 60)
        assert con.wallet.wait_settled(used).compute.state is ConditionState.FULFILLED
        spare = con.order(did)  # ordered before the backup, used after the restore
        free = [node.publisher.start(did, rawcode=f"print({i})").jobId for i in range(3)]
        done = {j: node.publisher.wait(j, timeout=60) for j in free}
        ledger = AgreementLedger(node.node.db)
        while ledger.get(spare) is None:  # the keeper learns it from the chain's events
            threading.Event().wait(0.05)

        # load while the backup runs: jobs started, statuses read, nonces written
        stop = threading.Event()
        errors: list[BaseException] = []

        def load() -> None:
            try:
                while not stop.is_set():
                    j = node.publisher.start(did, rawcode="print('load')").jobId
                    node.publisher.status(j)
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=load)
        worker.start()
        try:
            result = atoll("backup", str(backup), home=home)
        finally:
            stop.set()
            worker.join(timeout=60)
        assert result.returncode == 0, result.stderr
        assert not errors
        con.close()

    # the store and the chain are lost
    for path in [*home.glob("atoll.db*"), *(home / "chain").glob("chain.sqlite*")]:
        path.unlink()
    result = atoll("restore", str(backup), home=home)
    assert result.returncode == 0, result.stderr

    with running_provider(home, extra_roots=(str(data_root),)) as node:
        con = ProviderClient(node.url, consumer_key)
        assert con.status(paid.jobId).status == JobStatus.FINISHED
        assert con.result(paid.jobId, 0) == b"paid\n"
        for job_id, info in done.items():
            again = node.publisher.status(job_id)
            assert (again.status, again.results) == (info.status, info.results)
        ledger = AgreementLedger(node.node.db)
        assert ledger.get(used) is None  # settled: no longer open
        row = ledger.get(spare)
        assert row is not None and row.used == 0
        job = con.wait(con.start(did, rawcode="print(2)", agreement_id=spare).jobId, 60)
        assert job.status == JobStatus.FINISHED
        assert con.wallet.wait_settled(spare).escrow.state is ConditionState.FULFILLED
        # each paid once: the one settled before the backup is not paid again after it
        c = con.wallet.contracts
        released = [
            "0x" + bytes(e.args["agreementId"]).hex()
            for e in c.events(0, c.chain.block_number(), names=("PaymentReleased",))
        ]
        assert released.count(used) == 1 and released.count(spare) == 1
        con.close()


def test_restore_refuses_while_the_node_runs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with running_provider(home):
        backup = tmp_path / "b"
        take_backup(load_settings(home), backup)
        result = atoll("restore", str(backup), home=home)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: the node is running: stop it before restoring"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_backup_of_a_postgresql_store_says_to_use_pg_dump(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATOLL_DATABASE_URL", db_url)
    home = tmp_path / "home"
    with running_provider(home):
        report = take_backup(load_settings(home), tmp_path / "b")
    assert report.store == "postgresql"
    assert any("pg_dump" in n for n in report.notes)
    assert (tmp_path / "b" / "chain" / "chain.sqlite").exists()
    assert not (tmp_path / "b" / "atoll.db").exists()
    assert db_url not in " ".join(report.notes)  # the URL may hold a password
    with pytest.raises(ConfigError, match="not an empty directory"):
        take_backup(load_settings(home), tmp_path / "b")
    shutil.rmtree(tmp_path / "b")
