"""Schema migrations (Alembic): a new store is built by them, an older one upgraded, and a
store from a newer Atoll refused. A store made before migrations existed (tables created at
every start) holds the first revision's schema and is stamped with it first."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, inspect

from atoll.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"
#: the revision a store made before migrations is at
BASELINE = "0001"


def _config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def head() -> str:
    heads = ScriptDirectory(str(MIGRATIONS)).get_heads()
    assert len(heads) == 1, heads
    return str(heads[0])


def current(conn: Connection) -> str | None:
    """The store's revision; None for a store that has none."""
    return MigrationContext.configure(conn).get_current_revision()


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def upgrade(conn: Connection) -> None:
    """Bring the store on ``conn`` to the newest schema, in the caller's transaction."""
    cfg = _config(conn)
    script = ScriptDirectory.from_config(cfg)
    revision = current(conn)
    if revision is None and "jobs" in inspect(conn).get_table_names():
        command.stamp(cfg, BASELINE)
        revision = BASELINE
    if revision is not None and not _known(script, revision):
        raise ConfigError(
            f"the store's schema is at revision {revision}, which this version of Atoll does "
            "not know: it was written by a newer Atoll; upgrade Atoll, or restore a backup "
            "made by this version (`atoll restore`)"
        )
    if revision != head():
        command.upgrade(cfg, "head")
