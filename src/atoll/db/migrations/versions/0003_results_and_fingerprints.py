"""Job results as a manifest and a row per file; published files' fingerprints.

A store made before migrations by a version that already had these tables is stamped at
the first revision, so each table is created only where it is missing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "asset_fingerprints" not in existing:
        op.create_table(
            "asset_fingerprints",
            sa.Column(
                "did",
                sa.String(80),
                sa.ForeignKey("assets.did", ondelete="CASCADE"),
                primary_key=True,
            ),
            sa.Column("idx", sa.Integer, primary_key=True),
            sa.Column("dev", sa.String(24), nullable=False),
            sa.Column("ino", sa.String(24), nullable=False),
            sa.Column("size", sa.BigInteger, nullable=False),
            sa.Column("mtime_ns", sa.String(24), nullable=False),
            sa.Column("ctime_ns", sa.String(24), nullable=False),
        )
        op.create_index("ix_asset_fingerprints_inode", "asset_fingerprints", ["dev", "ino"])
    if "job_manifests" not in existing:
        op.create_table(
            "job_manifests",
            sa.Column("job_id", sa.String(64), primary_key=True),
            sa.Column("count", sa.Integer, nullable=False),
            sa.Column("size", sa.BigInteger, nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
        )
    if "job_results" not in existing:
        op.create_table(
            "job_results",
            sa.Column("job_id", sa.String(64), primary_key=True),
            sa.Column("idx", sa.Integer, primary_key=True),
            sa.Column("filename", sa.Text, nullable=False),
            sa.Column("filesize", sa.BigInteger, nullable=False),
            sa.Column("type", sa.String(32), nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
        )
