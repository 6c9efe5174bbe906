"""The store's engine: the settings every SQLite connection gets."""

from __future__ import annotations

from pathlib import Path

from atoll.db import PAGE_CACHE_KIB, connect


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
