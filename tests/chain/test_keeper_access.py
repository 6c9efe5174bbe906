"""The keeper on data access agreements, on a real embedded chain and each store backend:
learnt once from events, released to the publisher once the files were served, refunded
after the time out when nothing was, each token paid out once whatever step a crash cuts."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from atoll.chain.access_ledger import DOWNLOADS_PER_FILE, AccessLedger
from atoll.chain.contracts import Contracts
from atoll.chain.deployment import ChainNode
from atoll.chain.keeper import Keeper
from atoll.chain.ledger import AgreementLedger
from atoll.chain.records import ConditionState
from atoll.errors import Forbidden
from atoll.signing import Key
from tests.chain.test_keeper import OURS, THEIRS, TOKEN, setup


def order_access(c: Contracts, consumer: Key, did: str, timeout: int = 3600) -> str:
    aid = c.create_access_agreement(consumer.private_key, did, TOKEN, timeout=timeout)
    c.lock_payment(consumer.private_key, aid)
    return "0x" + aid.hex()


def keeper_of(node: ChainNode, db: sa.Engine, files: int = 2) -> tuple[Keeper, AccessLedger]:
    access = AccessLedger(db)
    keeper = Keeper(
        node,
        AgreementLedger(db),
        is_ours=lambda d: d == OURS,
        access=access,
        files_of=lambda _d: files,
    )
    return keeper, access


def balances(node: ChainNode, *who: str) -> tuple[int, ...]:
    return tuple(node.contracts.balance_of(a) for a in who)


def test_released_once_every_file_was_served(db: sa.Engine, tmp_path: Path) -> None:
    node, consumer = setup(tmp_path)
    keeper, access = keeper_of(node, db, files=2)
    publisher = node.contracts.did_owner(OURS)
    assert publisher is not None
    before = balances(node, consumer.address, publisher)
    aid = order_access(node.contracts, consumer, OURS)
    order_access(node.contracts, consumer, THEIRS)
    keeper.scan()
    keeper.scan()
    assert [(a.agreement_id, a.files) for a in access.open()] == [(aid, 2)]
    assert access.completed(aid, 0)
    keeper.settle_due()  # one file of two, the time out far off: not yet
    a = node.contracts.agreement(bytes.fromhex(aid[2:]))
    assert a is not None and a.access.state is ConditionState.UNFULFILLED
    assert access.completed(aid, 1)
    keeper.settle_due()
    a = node.contracts.agreement(bytes.fromhex(aid[2:]))
    assert a is not None and a.access.state is ConditionState.FULFILLED
    assert a.escrow.state is ConditionState.FULFILLED
    assert balances(node, consumer.address, publisher) == (
        before[0] - 2 * TOKEN,  # two agreements locked, one paid out to the publisher
        before[1] + TOKEN,
    )
    assert access.open() == []
    head = node.chain.block_number()
    keeper.settle_due()
    keeper.scan()
    assert node.chain.block_number() == head  # nothing left to send
    # paid for: the files may still be fetched until the time out, each within its count
    access.allow(aid, 0)
    for _ in range(DOWNLOADS_PER_FILE - 1):
        access.completed(aid, 0)
    with pytest.raises(Forbidden, match="complete downloads"):
        access.allow(aid, 0)


def test_refunded_after_the_time_out_when_nothing_was_served(db: sa.Engine, tmp_path: Path) -> None:
    node, consumer = setup(tmp_path)
    keeper, access = keeper_of(node, db)
    before = node.contracts.balance_of(consumer.address)
    aid = order_access(node.contracts, consumer, OURS, timeout=100)
    keeper.scan()
    assert keeper.settle_due() > 0  # not yet due
    node.chain.increase_time(150)
    node.chain.mine()
    keeper.settle_due()
    a = node.contracts.agreement(bytes.fromhex(aid[2:]))
    assert a is not None
    assert a.access.state is ConditionState.ABORTED
    assert a.escrow.state is ConditionState.ABORTED
    assert node.contracts.balance_of(consumer.address) == before
    assert access.settled(aid) == "refunded"
    # refunded: no download is counted or allowed any more
    assert not access.completed(aid, 0)
    with pytest.raises(Forbidden, match="settled"):
        access.allow(aid, 0)


class Cut(Exception):
    pass


@pytest.mark.parametrize("at", ["keeper.fulfilled", "keeper.paid"])
def test_a_crash_mid_release_pays_once(
    db: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: str
) -> None:
    node, consumer = setup(tmp_path)
    keeper, access = keeper_of(node, db, files=1)
    publisher = node.contracts.did_owner(OURS)
    assert publisher is not None
    before = balances(node, consumer.address, publisher)
    aid = order_access(node.contracts, consumer, OURS)
    keeper.scan()
    access.completed(aid, 0)

    def cut(name: str) -> None:
        if name == at:
            raise Cut(name)

    monkeypatch.setattr("atoll.chain.keeper.faults.point", cut)
    with pytest.raises(Cut):
        keeper.settle_due()
    monkeypatch.undo()
    # a keeper started afresh, as after kill -9, finds what was done and finishes it
    again, _ = keeper_of(node, db, files=1)
    again.scan()
    again.settle_due()
    again.settle_due()
    assert balances(node, consumer.address, publisher) == (before[0] - TOKEN, before[1] + TOKEN)
    assert access.open() == []


def test_a_crash_mid_refund_refunds_once(
    db: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node, consumer = setup(tmp_path)
    keeper, access = keeper_of(node, db)
    before = node.contracts.balance_of(consumer.address)
    aid = order_access(node.contracts, consumer, OURS, timeout=100)
    keeper.scan()
    node.chain.increase_time(150)
    node.chain.mine()

    def cut(name: str) -> None:
        if name == "keeper.paid":
            raise Cut(name)

    monkeypatch.setattr("atoll.chain.keeper.faults.point", cut)
    with pytest.raises(Cut):
        keeper.settle_due()
    monkeypatch.undo()
    assert access.settled(aid) == "refunding"  # closed before the chain was touched
    again, _ = keeper_of(node, db)
    again.settle_due()
    again.scan()
    assert node.contracts.balance_of(consumer.address) == before
    assert access.settled(aid) == "refunded"
