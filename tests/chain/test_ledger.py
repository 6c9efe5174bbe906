"""The agreement ledger when two writers record the same agreement at once (the keeper's
scan and a first start, or two replicas): the second records nothing and its transaction,
the event cursor with it, goes through."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from atoll.chain.access_ledger import AccessLedger, NewAccess
from atoll.chain.ledger import AgreementLedger, NewAgreement
from atoll.db.schema import access_agreements, agreements

AGREEMENT = NewAgreement("0x" + "ab" * 32, "did:op:" + "cd" * 32, "0x" + "1" * 40, 3, 10**10)
ACCESS = NewAccess("0x" + "ef" * 32, "did:op:" + "cd" * 32, "0x" + "2" * 40, 1, 10**10)


def test_learning_an_agreement_twice_keeps_the_first_and_moves_the_cursor(
    db: sa.Engine,
) -> None:
    ledger = AgreementLedger(db)
    ledger.learn([AGREEMENT], cursor=5)
    ledger.reserve("job-1", [AGREEMENT.agreement_id])
    ledger.learn([AGREEMENT], cursor=9, access=[ACCESS])
    ledger.learn([AGREEMENT], cursor=12, access=[ACCESS])
    row = ledger.get(AGREEMENT.agreement_id)
    assert row is not None and row.used == 1  # not reset by the second record
    assert ledger.cursor() == 12
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(agreements)).scalar() == 1
        count = sa.select(sa.func.count()).select_from(access_agreements)
        assert conn.execute(count).scalar() == 1
    AccessLedger(db).ensure(ACCESS)


def test_the_keeper_and_a_first_start_record_one_agreement_at_the_same_moment(
    pg_db: sa.Engine,
) -> None:
    """A first start has inserted the agreement and not yet committed when the keeper's scan
    records it too: the scan waits, finds it there, and commits its cursor."""
    ledger = AgreementLedger(pg_db)
    ledger.learn([], cursor=1)
    start = pg_db.connect()
    transaction = start.begin()
    start.execute(
        sa.insert(agreements).values(
            agreement_id=AGREEMENT.agreement_id,
            did=AGREEMENT.did,
            consumer=AGREEMENT.consumer.lower(),
            max_jobs=AGREEMENT.max_jobs,
            used=1,
            deadline=AGREEMENT.deadline,
            settled="",
        )
    )
    failed: list[BaseException] = []

    def scan() -> None:
        try:
            ledger.learn([AGREEMENT], cursor=2)
        except BaseException as exc:
            failed.append(exc)

    keeper = threading.Thread(target=scan)
    keeper.start()
    keeper.join(timeout=1.0)
    assert keeper.is_alive()  # waiting on the start's uncommitted row
    transaction.commit()
    start.close()
    keeper.join(timeout=30)
    assert not keeper.is_alive()
    assert failed == []
    assert ledger.cursor() == 2
    row = ledger.get(AGREEMENT.agreement_id)
    assert row is not None and row.used == 1  # the start's record stands
