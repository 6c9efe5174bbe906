"""The disclosure checks' reports, who may review each job, each checked file's release state,
and the reviewers' signed decisions."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "job_checks" not in existing:
        op.create_table(
            "job_checks",
            sa.Column("job_id", sa.String(64), primary_key=True),
            sa.Column("owner", sa.String(42), nullable=False),
            sa.Column("inputs", sa.JSON, nullable=False),
            sa.Column("mode", sa.String(8), nullable=False),
            sa.Column("reviewers_required", sa.Integer, nullable=False),
            sa.Column("digest", sa.String(64), nullable=False),
            sa.Column("report", sa.JSON, nullable=False),
            sa.Column("created", sa.Float, nullable=False),
        )
    if "job_reviewers" not in existing:
        op.create_table(
            "job_reviewers",
            sa.Column("job_id", sa.String(64), primary_key=True),
            sa.Column("address", sa.String(42), primary_key=True),
        )
        op.create_index("ix_job_reviewers_address", "job_reviewers", ["address"])
    if "job_releases" not in existing:
        op.create_table(
            "job_releases",
            sa.Column("job_id", sa.String(64), primary_key=True),
            sa.Column("idx", sa.Integer, primary_key=True),
            sa.Column("kind", sa.String(8), nullable=False),
            sa.Column("filename", sa.Text, nullable=False),
            sa.Column("size", sa.BigInteger, nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("release", sa.JSON),
        )
        op.create_index("ix_job_releases_state", "job_releases", ["state"])
    if "review_decisions" not in existing:
        op.create_table(
            "review_decisions",
            sa.Column("job_id", sa.String(64), primary_key=True),
            sa.Column("idx", sa.Integer, primary_key=True),
            sa.Column("reviewer", sa.String(42), primary_key=True),
            sa.Column("decision", sa.String(8), nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("body_digest", sa.String(64), nullable=False),
            sa.Column("nonce", sa.BigInteger, nullable=False),
            sa.Column("signature", sa.Text, nullable=False),
            sa.Column("created", sa.Float, nullable=False),
        )


def downgrade() -> None:
    op.drop_table("review_decisions")
    op.drop_index("ix_job_releases_state", table_name="job_releases")
    op.drop_table("job_releases")
    op.drop_index("ix_job_reviewers_address", table_name="job_reviewers")
    op.drop_table("job_reviewers")
    op.drop_table("job_checks")
