"""The dashboard's sign-in: server-side sessions and single-use sign-in values; and an index
for a page of an owner's jobs, newest first."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "ui_sessions" not in existing:
        op.create_table(
            "ui_sessions",
            sa.Column("token_hash", sa.String(64), primary_key=True),
            sa.Column("address", sa.String(42), nullable=False),
            sa.Column("csrf", sa.String(64), nullable=False),
            sa.Column("method", sa.String(8), nullable=False),
            sa.Column("created", sa.Float, nullable=False),
            sa.Column("expires", sa.Float, nullable=False),
            sa.Column("revoked", sa.Float),
        )
        op.create_index("ix_ui_sessions_address", "ui_sessions", ["address"])
    if "ix_jobs_owner_created" not in {
        i["name"] for i in sa.inspect(op.get_bind()).get_indexes("jobs")
    }:
        op.create_index("ix_jobs_owner_created", "jobs", ["owner", "created"])
    if "ui_challenges" not in existing:
        op.create_table(
            "ui_challenges",
            sa.Column("value_hash", sa.String(64), primary_key=True),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("address", sa.String(42), nullable=False),
            sa.Column("expires", sa.Float, nullable=False),
        )


def downgrade() -> None:
    op.drop_index("ix_jobs_owner_created", table_name="jobs")
    op.drop_table("ui_challenges")
    op.drop_index("ix_ui_sessions_address", table_name="ui_sessions")
    op.drop_table("ui_sessions")
