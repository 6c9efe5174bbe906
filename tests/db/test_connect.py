"""The store's engine: the settings every SQLite connection gets; PostgreSQL's pool, its
checks of idle connections, and reads that open no transaction."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool, QueuePool

import atoll.db
from atoll.db import PAGE_CACHE_KIB, connect, reader


def test_every_sqlite_connection_has_a_small_page_cache_and_the_wal(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'atoll.db'}")
    try:
        # two at once: the pool opens a second connection, which gets the settings too
        with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                assert conn.exec_driver_sql("PRAGMA cache_size").scalar_one() == -PAGE_CACHE_KIB
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        engine.dispose()


def backend_pid(db: sa.Engine) -> int:
    with db.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def test_the_postgresql_pool_holds_a_connection_for_each_worker_thread(pg_db: sa.Engine) -> None:
    limiter_tokens = 40  # anyio's default worker threads, which make the store's reads
    assert isinstance(pg_db.pool, QueuePool)
    assert pg_db.pool.size() >= limiter_tokens


def test_a_busy_connection_is_used_without_a_ping(
    pg_db: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[object] = []
    real_ping = pg_db.dialect.do_ping
    monkeypatch.setattr(pg_db.dialect, "do_ping", lambda c: pings.append(c) or real_ping(c))
    backend_pid(pg_db)
    backend_pid(pg_db)
    assert pings == []
    monkeypatch.setattr(atoll.db, "IDLE_CHECK_S", 0.0)  # every connection idle long enough
    backend_pid(pg_db)
    assert len(pings) == 1


def test_a_connection_dropped_while_idle_is_replaced_before_use(
    pg_db: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = backend_pid(pg_db)
    admin = sa.create_engine(pg_db.url, poolclass=NullPool)  # the pool's own stays idle in it
    with admin.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_terminate_backend({lost})")
    admin.dispose()
    monkeypatch.setattr(atoll.db, "IDLE_CHECK_S", 0.0)
    assert backend_pid(pg_db) != lost  # no error: the ping found it gone, a new one serves


def test_reads_on_postgresql_hold_no_transaction_open(pg_db: sa.Engine) -> None:
    idle = psycopg.pq.TransactionStatus.IDLE
    with reader(pg_db).connect() as conn:
        conn.exec_driver_sql("SELECT 1").scalar_one()
        assert conn.connection.dbapi_connection.info.transaction_status == idle  # type: ignore[union-attr]
    # the engine itself still opens one, for the writes that need it
    with pg_db.connect() as conn:
        conn.exec_driver_sql("SELECT 1").scalar_one()
        assert conn.connection.dbapi_connection.info.transaction_status != idle  # type: ignore[union-attr]


def test_sqlite_reads_use_the_engine_itself(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'atoll.db'}")
    try:
        assert reader(engine) is engine
    finally:
        engine.dispose()
