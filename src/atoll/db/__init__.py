"""The store's engine: SQLite in ATOLL_HOME by default, PostgreSQL when a URL names one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError

from atoll.db import migrate
from atoll.db.schema import metadata
from atoll.errors import ConfigError

__all__ = ["connect", "metadata"]

#: the page cache of each SQLite connection, in KiB
PAGE_CACHE_KIB = 512


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
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        if create:
            with engine.begin() as conn:
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
