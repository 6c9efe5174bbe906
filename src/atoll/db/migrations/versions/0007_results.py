"""Results that expire: when each job's results go, and how far their deletion got.

A store made before migrations by a version that already had these columns is stamped at
the first revision, so each column is added only where it is missing. Jobs that ended before
this revision have no expiry until the sweeper gives them their environment's."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("jobs")}
    indexes = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("jobs")}
    if "expires_at" not in columns:
        op.add_column("jobs", sa.Column("expires_at", sa.Float, nullable=True))
    if "expired" not in columns:
        op.add_column("jobs", sa.Column("expired", sa.Integer, nullable=False, server_default="0"))
    if "ix_jobs_expires_at" not in indexes:
        op.create_index("ix_jobs_expires_at", "jobs", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_expires_at", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("expired")
        batch.drop_column("expires_at")
