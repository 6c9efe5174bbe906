"""Mock data per dataset and dry runs on it (jobs with no agreement)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    if "mock_data" not in tables:
        op.create_table(
            "mock_data",
            sa.Column(
                "did",
                sa.String(80),
                sa.ForeignKey("assets.did", ondelete="CASCADE"),
                primary_key=True,
            ),
            sa.Column("source", sa.String(16), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("mock_schema", sa.JSON),
            sa.Column("file_index", sa.Integer, nullable=False),
            sa.Column("location", sa.Text, nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
            sa.Column("size", sa.BigInteger, nullable=False),
            sa.Column("rows", sa.Integer, nullable=False),
            sa.Column("columns", sa.JSON, nullable=False),
            sa.Column("updated", sa.Float, nullable=False),
        )
    if "dry_runs" not in tables:
        op.create_table(
            "dry_runs",
            sa.Column("job_id", sa.String(64), primary_key=True),
            sa.Column("consumer", sa.String(42), nullable=False),
            sa.Column("did", sa.String(80), nullable=False),
            sa.Column("created", sa.Float, nullable=False),
            sa.Column("report", sa.JSON),
        )
        op.create_index("ix_dry_runs_consumer", "dry_runs", ["consumer"])


def downgrade() -> None:
    op.drop_index("ix_dry_runs_consumer", table_name="dry_runs")
    op.drop_table("dry_runs")
    op.drop_table("mock_data")
