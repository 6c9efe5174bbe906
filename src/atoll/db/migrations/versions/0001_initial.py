"""The schema as stores were created before migrations (``create_all`` at every start)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("did", sa.String(80), primary_key=True),
        sa.Column("owner", sa.String(42), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
        sa.Column("ddo", sa.JSON, nullable=False),
    )
    op.create_index("ix_assets_owner", "assets", ["owner"])
    op.create_table(
        "asset_tags",
        sa.Column(
            "did",
            sa.String(80),
            sa.ForeignKey("assets.did", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tag", sa.String(64), primary_key=True),
    )
    op.create_index("ix_asset_tags_tag", "asset_tags", ["tag"])
    op.create_table(
        "asset_files",
        sa.Column(
            "did",
            sa.String(80),
            sa.ForeignKey("assets.did", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("content_type", sa.String(128), nullable=False),
    )
    op.create_table(
        "nonces",
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("address", sa.String(42), primary_key=True),
        sa.Column("nonce", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(42), nullable=False),
        sa.Column("did", sa.String(80), nullable=False),
        sa.Column("agreement_id", sa.String(80), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("status_text", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("started", sa.Float),
        sa.Column("finished", sa.Float),
        sa.Column("stopreq", sa.Integer, nullable=False),
        sa.Column("removed", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("workflow", sa.JSON, nullable=False),
        sa.Column("results", sa.JSON, nullable=False),
    )
    op.create_index("ix_jobs_owner", "jobs", ["owner"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_table(
        "agreements",
        sa.Column("agreement_id", sa.String(66), primary_key=True),
        sa.Column("did", sa.String(80), nullable=False),
        sa.Column("consumer", sa.String(42), nullable=False),
        sa.Column("max_jobs", sa.Integer, nullable=False),
        sa.Column("used", sa.Integer, nullable=False),
        sa.Column("deadline", sa.BigInteger, nullable=False),
        sa.Column("settled", sa.String(16), nullable=False),
    )
    op.create_table(
        "agreement_jobs",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("agreement_id", sa.String(66), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("manifest", sa.String(64), nullable=False),
    )
    op.create_index("ix_agreement_jobs_agreement", "agreement_jobs", ["agreement_id"])
    op.create_table(
        "keeper_cursor",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("block", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "job_outcomes",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("receipt", sa.JSON, nullable=False),
        sa.Column("derived_did", sa.String(80), nullable=False),
    )
