"""Data access agreements and the complete downloads served under each."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    if "access_agreements" not in tables:
        op.create_table(
            "access_agreements",
            sa.Column("agreement_id", sa.String(66), primary_key=True),
            sa.Column("did", sa.String(80), nullable=False),
            sa.Column("consumer", sa.String(42), nullable=False),
            sa.Column("files", sa.Integer, nullable=False),
            sa.Column("deadline", sa.BigInteger, nullable=False),
            sa.Column("settled", sa.String(16), nullable=False, server_default=""),
        )
    if "access_downloads" not in tables:
        op.create_table(
            "access_downloads",
            sa.Column("agreement_id", sa.String(66), primary_key=True),
            sa.Column("idx", sa.Integer, primary_key=True),
            sa.Column("completed", sa.Integer, nullable=False, server_default="0"),
        )


def downgrade() -> None:
    op.drop_table("access_downloads")
    op.drop_table("access_agreements")
