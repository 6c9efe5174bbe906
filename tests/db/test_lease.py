"""One holder at a time among processes sharing a PostgreSQL store, freed when the
holder's connection ends (its process died), and one lease per store."""

from __future__ import annotations

import sqlalchemy as sa

from atoll.db import connect
from atoll.db.lease import AdvisoryLease
from tests.conftest import _scratch_postgres


def test_one_holder_and_the_next_takes_over_when_it_lets_go(pg_db: sa.Engine) -> None:
    first, second = AdvisoryLease(pg_db, "keeper", "one"), AdvisoryLease(pg_db, "keeper", "two")
    try:
        assert first.take()
        assert not second.take()
        assert first.held() and not second.held()
        first.release()
        assert second.take()
        assert not first.take()
    finally:
        first.release()
        second.release()


def test_a_holder_whose_connection_dies_loses_the_lease_to_the_next(pg_db: sa.Engine) -> None:
    first, second = AdvisoryLease(pg_db, "keeper", "one"), AdvisoryLease(pg_db, "keeper", "two")
    try:
        assert first.take()
        assert not second.take()
        # what the server sees when the holder's process is killed: its session ends.
        # The timeout makes the server wait until that backend has exited (and so let go of
        # its locks): without one the call returns as soon as the signal is sent.
        with pg_db.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                    "WHERE application_name = 'one' AND datname = current_database()"
                )
            )
        assert second.take()
        assert not first.held()
    finally:
        first.release()
        second.release()


def test_each_store_and_name_has_a_lease_of_its_own(pg_db: sa.Engine) -> None:
    with _scratch_postgres() as url:
        other_store = connect(url)
        leases = [
            AdvisoryLease(pg_db, "keeper"),
            AdvisoryLease(other_store, "keeper"),
            AdvisoryLease(pg_db, "another"),
        ]
        try:
            assert all(lease.take() for lease in leases)
        finally:
            for lease in leases:
                lease.release()
            other_store.dispose()
