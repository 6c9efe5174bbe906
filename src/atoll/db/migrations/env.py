"""Alembic's entry point: migrations run on the connection :func:`atoll.db.migrate.upgrade`
hands over, never on a URL of their own (the URL may hold a password)."""

from __future__ import annotations

from alembic import context

from atoll.db.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
