"""job events, job logs, webhooks and continued runs

`job_events` holds a job's status changes and warnings in order (replayed by the events
stream), `job_logs` the log records of its runs, five `jobs` columns a webhook called when
the job ends (its URL and secret, and the delivery's state, tries, next try and last error),
and `jobs.continued_from` the job whose final state a job went on from.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "job_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column(
            "job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_job_events_job_id_id", "job_events", ["job_id", "id"])
    op.create_table(
        "job_logs",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column(
            "job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("logger", sa.String(128), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
    )
    op.create_index("ix_job_logs_job_id_id", "job_logs", ["job_id", "id"])
    op.add_column("jobs", sa.Column("continued_from", sa.String(32), nullable=True))
    op.add_column("jobs", sa.Column("webhook", sa.JSON(), nullable=True))
    op.add_column("jobs", sa.Column("webhook_status", sa.String(16), nullable=True))
    op.add_column(
        "jobs", sa.Column("webhook_attempts", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("jobs", sa.Column("webhook_next_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("webhook_last_error", sa.String(500), nullable=True))
    op.create_index("ix_jobs_webhook_next_at", "jobs", ["webhook_next_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_webhook_next_at", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        for column in (
            "webhook_last_error",
            "webhook_next_at",
            "webhook_attempts",
            "webhook_status",
            "webhook",
            "continued_from",
        ):
            batch.drop_column(column)
    op.drop_index("ix_job_logs_job_id_id", table_name="job_logs")
    op.drop_table("job_logs")
    op.drop_index("ix_job_events_job_id_id", table_name="job_events")
    op.drop_table("job_events")
