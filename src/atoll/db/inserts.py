"""Inserts that leave an existing row alone: where two writers (a replica's first start and
the keeper's scan, two replicas) may record the same fact at the same moment, the second is
a no-op instead of an error that rolls back everything else its transaction did."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_if_new(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """Insert ``values`` unless a row with the same key exists; whether it was inserted."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing()
    return bool(conn.execute(statement).rowcount)
