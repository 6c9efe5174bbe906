"""The store's engine: SQLite in ATOLL_HOME by default, PostgreSQL when a URL names one."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from atoll.db.schema import metadata
from atoll.errors import ConfigError

__all__ = ["connect", "metadata", "reader"]

#: the page cache of each SQLite connection, in KiB
PAGE_CACHE_KIB = 512
#: PostgreSQL connections kept open: one for each worker thread that may use the store at
#: once (anyio's default limiter, 40), a few for the job runners, keeper and watcher. A
#: smaller pool makes busy threads open and close connections (milliseconds each) or queue.
PG_POOL_SIZE = 48
#: beyond the pool, connections opened for a burst and closed when returned
PG_MAX_OVERFLOW = 16
#: a pooled connection idle longer than this (seconds) is checked before it is used
IDLE_CHECK_S = 5.0
#: connections older than this (seconds) are replaced, before a server or a firewall
#: between closes them for having lived too long
PG_RECYCLE_S = 1800


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the status readers run while a job commits; synchronous=NORMAL keeps every
    # commit durable across a process kill (only an OS crash could lose the last one).
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    # each pooled connection keeps its own page cache, 2 MiB by default, which fills as the
    # store grows and never empties: the server's memory would grow with its jobs. The hot
    # pages (the indexes' upper levels, recent jobs) fit in far less, and the rest is in the
    # operating system's file cache anyway.
    cur.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
    cur.close()


def _idle_since(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
    record.info["idle_since"] = time.monotonic()


def _check_if_idle(engine: Engine) -> Any:
    """A checkout hook that pings only a connection that sat idle in the pool: one the
    server may have dropped meanwhile (a restart, an idle timeout). A ping on every checkout
    (``pool_pre_ping``) costs a round trip on each of a request's several store reads, which
    under load is much of the request; a connection lost while busy is found by its next
    statement instead, and SQLAlchemy then replaces every connection the pool holds."""

    def check(dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_CHECK_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception:
            # the pool then drops this connection and checks out another (or a new one)
            raise DisconnectionError("a pooled connection was lost while idle") from None

    return check


def reader(engine: Engine) -> Engine:
    """``engine`` for reads that need no transaction of their own. On PostgreSQL each
    statement then runs on its own (autocommit): no BEGIN before it and no ROLLBACK when the
    connection is returned, two round trips of the three a single read costs otherwise.
    Under READ COMMITTED every statement sees its own snapshot anyway, so reads see what
    they saw before."""
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


_VERSIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*[\"']([^\"']+)[\"']\s*$", re.M)
_DOWN = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(None|[\"']([^\"']+)[\"'])\s*$", re.M)


def head_revision() -> str | None:
    """The newest schema revision, read from the migration files' ``revision`` and
    ``down_revision`` lines; None where they do not read as one plain chain (Alembic then
    decides)."""
    revisions, downs = set(), set()
    for path in _VERSIONS.glob("*.py"):
        if path.name == "__init__.py":
            continue
        source = path.read_text()
        revision, down = _REVISION.findall(source), _DOWN.findall(source)
        if len(revision) != 1 or len(down) != 1:
            return None
        revisions.add(revision[0])
        if down[0][1]:
            downs.add(down[0][1])
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 else None


def _at_head(conn: Any) -> bool:
    """Whether the store already holds the newest schema (by the revision it records)."""
    head = head_revision()
    if head is None or "alembic_version" not in inspect(conn).get_table_names():
        return False
    found = [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]
    return found == [head]


def connect(url: str, create: bool = True) -> Engine:
    """Open the store at ``url`` and, with ``create``, bring its schema to the newest
    revision (:mod:`atoll.db.migrate`). Errors never echo the URL, which may hold a
    password."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(
                url,
                pool_size=PG_POOL_SIZE,
                max_overflow=PG_MAX_OVERFLOW,
                pool_recycle=PG_RECYCLE_S,
            )
            event.listen(engine, "checkin", _idle_since)
            event.listen(engine, "checkout", _check_if_idle(engine))
        if create:
            with engine.begin() as conn:
                if not _at_head(conn):
                    # Alembic (and what it brings: Mako, its script machinery) is loaded
                    # only for a store that needs it, not kept in every server's memory
                    from atoll.db import migrate

                    migrate.upgrade(conn)
    except ConfigError:
        raise
    except OperationalError as exc:
        raise ConfigError(
            f"cannot open the store ({engine_kind(url)}): {type(exc.orig).__name__}"
        ) from None
    except Exception as exc:  # a malformed URL: say which kind, not the URL itself
        raise ConfigError(
            f"cannot open the store ({engine_kind(url)}): {type(exc).__name__}"
        ) from None
    return engine


def engine_kind(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0] or "unknown"
