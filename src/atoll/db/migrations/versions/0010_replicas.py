"""The replica that started each job: provider replicas sharing one PostgreSQL store each
recover, resume and sweep their own jobs only."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table in ("jobs", "agreement_jobs"):
        if "node" not in {c["name"] for c in inspector.get_columns(table)}:
            op.add_column(
                table, sa.Column("node", sa.String(128), nullable=False, server_default="")
            )


def downgrade() -> None:
    op.drop_column("agreement_jobs", "node")
    op.drop_column("jobs", "node")
