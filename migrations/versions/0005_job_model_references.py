"""jobs reference finished models

A job's config may name finished models (a policy to evaluate, a behaviour policy to collect
transitions with) by id or by name@alias; the ids they named when the job was accepted are
pinned in `jobs.model_refs`, so an alias moved later does not change what the job uses.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("model_refs", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("model_refs")
