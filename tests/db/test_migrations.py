"""Schema migrations: new stores are built by them, stores made before them are upgraded
in place with their data, and a store from a newer Atoll is refused."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from atoll.db import connect, head_revision, migrate
from atoll.db.schema import agreements, jobs, metadata, node_identity
from atoll.errors import ConfigError


def revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return migrate.current(conn)


def test_a_new_store_is_built_by_the_migrations_and_matches_the_tables(db_url: str) -> None:
    engine = connect(db_url)
    try:
        assert revision(engine) == migrate.head()
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


def test_a_store_made_before_migrations_is_upgraded_with_its_data(db_url: str) -> None:
    raw = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    # what every start used to do: create the tables of the time, no revision recorded
    old_tables = [t for t in metadata.sorted_tables if t is not node_identity]
    metadata.create_all(raw, tables=old_tables)
    with raw.begin() as conn:
        conn.execute(
            sa.insert(agreements).values(
                agreement_id="0x" + "ab" * 32,
                did="did:atoll:x",
                consumer="0x" + "00" * 20,
                max_jobs=1,
                used=1,
                deadline=5,
                settled="",
            )
        )
    raw.dispose()
    engine = connect(db_url)
    try:
        assert revision(engine) == migrate.head()
        with engine.connect() as conn:
            assert conn.execute(sa.select(agreements.c.used)).scalar_one() == 1
            assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar_one() == 0
            assert conn.execute(sa.select(node_identity)).all() == []
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


def test_a_store_from_a_newer_atoll_is_refused(db_url: str) -> None:
    engine = connect(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(ConfigError, match=r"revision 9999.*newer Atoll"):
        connect(db_url)


def test_the_head_read_from_the_migration_files_is_alembic_s() -> None:
    """A store already at the newest revision is opened without loading Alembic: the head
    it is compared with, read from the migration files, is the one Alembic finds."""
    assert head_revision() == migrate.head()


def test_a_store_at_the_head_is_opened_without_migrating_and_others_are_migrated(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    upgrade = migrate.upgrade
    monkeypatch.setattr(migrate, "upgrade", lambda conn: calls.append("up") or upgrade(conn))
    connect(db_url).dispose()
    assert calls == ["up"]  # a new store is built by the migrations
    connect(db_url).dispose()
    assert calls == ["up"]  # at the head: nothing to run
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0005'"))
    engine.dispose()
    engine = connect(db_url)  # behind: migrated again, to the head
    assert calls == ["up", "up"] and revision(engine) == migrate.head()
    engine.dispose()
