"""The keeper on a real embedded chain and each store backend: events read once from a
stored cursor, only this provider's agreements, settlement exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from atoll.chain.contracts import Contracts
from atoll.chain.deployment import ChainNode, fund_from_dev
from atoll.chain.embedded import EmbeddedChain
from atoll.chain.keeper import Keeper
from atoll.chain.ledger import AgreementLedger
from atoll.chain.records import ConditionState
from atoll.errors import Forbidden
from atoll.models.charges import CHARGED, REFUNDED
from atoll.models.job import JobInfo
from atoll.models.status import JobStatus
from atoll.signing import Key

TOKEN = 10**18
OURS = "did:atoll:" + "11" * 32
THEIRS = "did:atoll:" + "22" * 32


def setup(tmp: Path) -> tuple[ChainNode, Key]:
    chain = EmbeddedChain(tmp / "chain.sqlite")
    provider = Key.generate()
    ChainNode.deploy(chain, provider.private_key, tmp / "book.json")
    node = ChainNode.open("", tmp / "c", tmp / "book.json", provider.private_key, chain=chain)
    consumer = Key.generate()
    node.faucet(consumer.address)
    publisher = Key.generate()
    fund_from_dev(chain, [publisher.address])
    for did in (OURS, THEIRS):
        node.contracts.register_did(publisher.private_key, did, b"\1" * 32, [provider.address])
    return node, consumer


def order(c: Contracts, consumer: Key, did: str) -> str:
    aid = c.create_agreement(consumer.private_key, did, TOKEN)
    c.lock_payment(consumer.private_key, aid)
    return "0x" + aid.hex()


def finished(job_id: str) -> JobInfo:
    return JobInfo(
        jobId=job_id,
        owner="0x" + "00" * 20,
        did=OURS,
        inputDID=[OURS],
        status=int(JobStatus.FINISHED),
        statusText="done",
        dateCreated="",
    )


def test_events_read_once_from_the_cursor_and_only_ours(db: sa.Engine, tmp_path: Path) -> None:
    node, consumer = setup(tmp_path)
    ledger = AgreementLedger(db)
    mine = order(node.contracts, consumer, OURS)
    order(node.contracts, consumer, THEIRS)
    keeper = Keeper(node, ledger, is_ours=lambda d: d == OURS)
    keeper.scan()
    assert [a.agreement_id for a in ledger.open()] == [mine]
    assert ledger.cursor() == node.chain.block_number()
    keeper.scan()
    assert len(ledger.open()) == 1
    # a keeper started afresh (as after kill -9) goes on from the stored cursor
    second = order(node.contracts, consumer, OURS)
    Keeper(node, ledger, is_ours=lambda d: d == OURS).scan()
    assert sorted(a.agreement_id for a in ledger.open()) == sorted([mine, second])
    assert ledger.cursor() == node.chain.block_number()


def test_settles_exactly_once(db: sa.Engine, tmp_path: Path) -> None:
    node, consumer = setup(tmp_path)
    ledger = AgreementLedger(db)
    keeper = Keeper(node, ledger, is_ours=lambda d: d == OURS)
    aid = order(node.contracts, consumer, OURS)
    keeper.scan()
    ledger.reserve("job-1", [aid])
    ledger.job_started("job-1")
    assert keeper.settle_due() > 0  # a job is running: nothing to do yet
    keeper.job_ended(finished("job-1"), "ab" * 32)
    keeper.job_ended(finished("job-1"), "cd" * 32)  # told twice: recorded once
    assert [a.delivered for a in ledger.open()] == [1]
    keeper.settle_due()
    agreement = node.contracts.agreement(bytes.fromhex(aid[2:]))
    assert agreement is not None and agreement.escrow.state is ConditionState.FULFILLED
    assert agreement.result_hash == bytes.fromhex("ab" * 32)
    assert ledger.open() == []
    head = node.chain.block_number()
    keeper.settle_due()
    assert node.chain.block_number() == head  # nothing left to send


def ended(job_id: str, status: JobStatus) -> JobInfo:
    return finished(job_id).model_copy(update={"status": int(status), "statusText": status.text})


@pytest.mark.parametrize("status", sorted(CHARGED))
def test_the_jobs_own_failures_are_charged(
    db: sa.Engine, tmp_path: Path, status: JobStatus
) -> None:
    node, consumer = setup(tmp_path)
    ledger = AgreementLedger(db)
    keeper = Keeper(node, ledger, is_ours=lambda d: d == OURS)
    aid = order(node.contracts, consumer, OURS)
    keeper.scan()
    ledger.reserve("job-1", [aid])
    ledger.job_started("job-1")
    keeper.job_ended(ended("job-1", status), "ab" * 32)
    keeper.settle_due()
    agreement = node.contracts.agreement(bytes.fromhex(aid[2:]))
    assert agreement is not None
    assert agreement.compute.state is ConditionState.FULFILLED
    assert agreement.escrow.state is ConditionState.FULFILLED
    # the job slot stays used: a second job is not free
    with pytest.raises(Forbidden):
        ledger.reserve("job-2", [aid])


@pytest.mark.parametrize("status", sorted(REFUNDED))
def test_the_providers_failures_refund_at_once(
    db: sa.Engine, tmp_path: Path, status: JobStatus
) -> None:
    node, consumer = setup(tmp_path)
    ledger = AgreementLedger(db)
    keeper = Keeper(node, ledger, is_ours=lambda d: d == OURS)
    before = node.contracts.balance_of(consumer.address)
    aid = order(node.contracts, consumer, OURS)
    keeper.scan()
    ledger.reserve("job-1", [aid])
    ledger.job_started("job-1")
    keeper.job_ended(ended("job-1", status), "ab" * 32)
    keeper.settle_due()  # no time has passed: the agreement's hour is far off
    agreement = node.contracts.agreement(bytes.fromhex(aid[2:]))
    assert agreement is not None
    assert agreement.compute.state is ConditionState.ABORTED
    assert agreement.escrow.state is ConditionState.ABORTED
    assert node.contracts.balance_of(consumer.address) == before
    assert ledger.open() == []


def test_no_early_refund_while_another_job_is_counted(db: sa.Engine, tmp_path: Path) -> None:
    node, consumer = setup(tmp_path)
    ledger = AgreementLedger(db)
    keeper = Keeper(node, ledger, is_ours=lambda d: d == OURS)
    aid = (
        "0x" + node.contracts.create_agreement(consumer.private_key, OURS, TOKEN, max_jobs=2).hex()
    )
    node.contracts.lock_payment(consumer.private_key, bytes.fromhex(aid[2:]))
    keeper.scan()
    ledger.reserve("job-1", [aid])
    ledger.job_started("job-1")
    ledger.reserve("job-2", [aid])  # a second job, counted but not yet started
    keeper.job_ended(ended("job-1", JobStatus.SANDBOX_UNAVAILABLE), "")
    keeper.settle_due()
    agreement = node.contracts.agreement(bytes.fromhex(aid[2:]))
    assert agreement is not None and agreement.compute.state is ConditionState.UNFULFILLED
    ledger.job_started("job-2")
    keeper.job_ended(finished("job-2"), "cd" * 32)
    keeper.settle_due()
    agreement = node.contracts.agreement(bytes.fromhex(aid[2:]))
    assert agreement is not None and agreement.escrow.state is ConditionState.UNFULFILLED
    # the second job delivered: paid at the agreement's end, not refunded. Into the keeper's
    # settling margin, not past the time out: past it the chain refuses to fulfil, and the
    # seconds the test itself took count too
    node.chain.increase_time(3600 - 30)
    keeper.settle_due()
    agreement = node.contracts.agreement(bytes.fromhex(aid[2:]))
    assert agreement is not None and agreement.compute.state is ConditionState.FULFILLED
