"""checkpoint fencing, runtime limits, idempotency keys

Each attempt writes its own checkpoint file and `jobs.checkpoint_uri` says which one is
current (jobs checkpointed before this keep theirs at the old key, which the worker still
reads); jobs may carry a wall-clock limit; submissions remember their `Idempotency-Key`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 08:01:17.700946
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('idempotency_keys',
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('resource_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'key')
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_keys_created_at'), ['created_at'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checkpoint_uri', sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column('max_runtime_seconds', sa.Float(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('max_runtime_seconds')
        batch_op.drop_column('checkpoint_uri')

    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_created_at'))

    op.drop_table('idempotency_keys')
