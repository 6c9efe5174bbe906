"""The keeper runs on one replica at a time: the holder of the store's keeper lease; when
the holder's session ends, it stops, and a waiting replica starts its own.

The keepers here are stand-ins that record whether they run (the real keeper, on a real
chain, is taken over in tests/provider/test_replicas.py); the lease is the real one."""

from __future__ import annotations

import threading
from typing import cast

import sqlalchemy as sa

from atoll.chain.keeper import Keeper
from atoll.chain.keeper_turn import KeeperTurn
from atoll.db.lease import AdvisoryLease


class Recording:
    def __init__(self) -> None:
        self.running = False
        self.changed = threading.Event()

    def start(self) -> None:
        self.running = True
        self.changed.set()

    def stop(self) -> None:
        self.running = False
        self.changed.set()


def turn(db: sa.Engine, name: str) -> tuple[KeeperTurn, Recording]:
    keeper = Recording()
    lease = AdvisoryLease(db, "keeper", f"atoll-keeper {name}")
    return KeeperTurn(cast(Keeper, keeper), lease, check_every=0.05), keeper


def wait_until(condition: object, seconds: float = 10) -> bool:
    done = threading.Event()
    for _ in range(int(seconds / 0.02)):
        if condition():  # type: ignore[operator]
            return True
        done.wait(0.02)
    return False


def test_one_keeper_runs_and_the_other_takes_over_when_its_session_ends(
    pg_db: sa.Engine,
) -> None:
    a, keeper_a = turn(pg_db, "a")
    b, keeper_b = turn(pg_db, "b")
    a.start()
    b.start()
    try:
        assert a.keeping and keeper_a.running
        assert not b.keeping and not keeper_b.running
        with pg_db.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'atoll-keeper a' "
                    "AND datname = current_database()"
                )
            )
        assert wait_until(lambda: b.keeping and keeper_b.running)
        # the replica that lost its session stopped keeping: never two at once for long
        assert wait_until(lambda: not a.keeping and not keeper_a.running)
    finally:
        a.stop()
        b.stop()
    assert not keeper_a.running and not keeper_b.running


def test_a_replica_that_stops_hands_the_keeper_on(pg_db: sa.Engine) -> None:
    a, keeper_a = turn(pg_db, "a")
    b, keeper_b = turn(pg_db, "b")
    a.start()
    b.start()
    try:
        a.stop()
        assert not keeper_a.running
        assert wait_until(lambda: keeper_b.running)
    finally:
        b.stop()
