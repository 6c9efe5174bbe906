"""Nonces as a window of unused values per address: the nonces each address has used while
they are still inside the window (the single last nonce per address is no longer read)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "used_nonces" in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        "used_nonces",
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("address", sa.String(42), primary_key=True),
        sa.Column("nonce", sa.BigInteger, primary_key=True),
    )
    op.create_index("ix_used_nonces_nonce", "used_nonces", ["nonce"])


def downgrade() -> None:
    op.drop_index("ix_used_nonces_nonce", table_name="used_nonces")
    op.drop_table("used_nonces")
