"""models, registry, datasets, query jobs

A trained model becomes a resource of its own (`models`, with an id that is not its job's),
names get versions and aliases, uploaded datasets get a table and a link to the jobs that use
them, and jobs gain a kind (training or heavy query), warnings, an error code and a request to
register their model. Existing succeeded jobs' models move from `jobs.artifact_path` /
`jobs.model_metadata` into `models` rows (data migration), and the two columns go.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 07:15:49.759031
"""

import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('datasets',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('rows', sa.BigInteger(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('artifact_uri', sa.String(length=1024), nullable=False),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'sha256')
    )
    op.create_index('ix_datasets_created_at', 'datasets', ['created_at'])
    op.create_index('ix_datasets_kind', 'datasets', ['kind'])

    op.create_table('job_datasets',
    sa.Column('job_id', sa.String(length=32), nullable=False),
    sa.Column('dataset_id', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', 'dataset_id')
    )
    op.create_index('ix_job_datasets_dataset_id', 'job_datasets', ['dataset_id'])

    op.create_table('models',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=True),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('algorithm', sa.String(length=64), nullable=False),
    sa.Column('model_metadata', sa.JSON(), nullable=False),
    sa.Column('artifact_uri', sa.String(length=1024), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job_id')
    )
    op.create_index('ix_models_algorithm', 'models', ['algorithm'])
    op.create_index('ix_models_created_at', 'models', ['created_at'])

    op.create_table('model_versions',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], ),
    sa.PrimaryKeyConstraint('name', 'version')
    )
    op.create_index('ix_model_versions_model_id', 'model_versions', ['model_id'])

    op.create_table('model_aliases',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('alias', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', TIMESTAMP, nullable=False),
    sa.ForeignKeyConstraint(['name', 'version'], ['model_versions.name', 'model_versions.version'], ),
    sa.PrimaryKeyConstraint('name', 'alias')
    )

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='train'))
        batch_op.add_column(sa.Column('error_code', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('warnings', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('register_as', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('cache_key', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('result_uri', sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column('result_media_type', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('expires_at', TIMESTAMP, nullable=True))
        batch_op.create_index('ix_jobs_cache_key', ['cache_key'], unique=False)
        batch_op.create_index('ix_jobs_kind', ['kind'], unique=False)

    move_models_out_of_jobs()

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('artifact_path')
        batch_op.drop_column('model_metadata')


# -- data migration ------------------------------------------------------------------------------
_jobs = sa.table(
    'jobs',
    sa.column('id', sa.String),
    sa.column('algorithm', sa.String),
    sa.column('status', sa.String),
    sa.column('artifact_path', sa.String),
    sa.column('model_metadata', sa.JSON),
    sa.column('finished_at', TIMESTAMP),
)
_models = sa.table(
    'models',
    sa.column('id', sa.String),
    sa.column('job_id', sa.String),
    sa.column('kind', sa.String),
    sa.column('algorithm', sa.String),
    sa.column('model_metadata', sa.JSON),
    sa.column('artifact_uri', sa.String),
    sa.column('size_bytes', sa.BigInteger),
    sa.column('sha256', sa.String),
    sa.column('created_at', TIMESTAMP),
)


def _as_uri(path: str) -> str:
    """Paths written before artifact URIs existed become file URIs."""
    if path.startswith(('file://', 's3://')):
        return path
    return Path(path).resolve().as_uri()


def _size_and_digest(uri: str) -> tuple[int, str]:
    """Size and sha256 of a local model file; unknown (0, "") for a missing or remote one."""
    if not uri.startswith('file://'):
        return 0, ''
    path = Path(unquote(urlparse(uri).path))
    if not path.is_file():
        return 0, ''
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def move_models_out_of_jobs() -> None:
    """One `models` row per succeeded job that has a model file."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            _jobs.c.id,
            _jobs.c.algorithm,
            _jobs.c.artifact_path,
            _jobs.c.model_metadata,
            _jobs.c.finished_at,
        ).where(_jobs.c.status == 'succeeded', _jobs.c.artifact_path.is_not(None))
    ).all()
    for job_id, algorithm, path, metadata, finished_at in rows:
        metadata = metadata or {}
        uri = _as_uri(path)
        size, digest = _size_and_digest(uri)
        bind.execute(
            _models.insert().values(
                id=uuid.uuid4().hex,
                job_id=job_id,
                kind=metadata.get('kind', algorithm),
                algorithm=algorithm,
                model_metadata=metadata,
                artifact_uri=uri,
                size_bytes=size,
                sha256=digest,
                created_at=finished_at or datetime.now(UTC),
            )
        )


def move_models_back_into_jobs() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_models.c.job_id, _models.c.artifact_uri, _models.c.model_metadata).where(
            _models.c.job_id.is_not(None)
        )
    ).all()
    for job_id, uri, metadata in rows:
        path = unquote(urlparse(uri).path) if uri.startswith('file://') else uri
        bind.execute(
            _jobs.update()
            .where(_jobs.c.id == job_id)
            .values(artifact_path=path, model_metadata=metadata)
        )


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model_metadata', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('artifact_path', sa.String(length=1024), nullable=True))
    move_models_back_into_jobs()
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_kind')
        batch_op.drop_index('ix_jobs_cache_key')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('result_media_type')
        batch_op.drop_column('result_uri')
        batch_op.drop_column('cache_key')
        batch_op.drop_column('register_as')
        batch_op.drop_column('warnings')
        batch_op.drop_column('error_code')
        batch_op.drop_column('kind')

    op.drop_table('model_aliases')
    op.drop_index('ix_model_versions_model_id', table_name='model_versions')
    op.drop_table('model_versions')
    op.drop_index('ix_models_created_at', table_name='models')
    op.drop_index('ix_models_algorithm', table_name='models')
    op.drop_table('models')
    op.drop_index('ix_job_datasets_dataset_id', table_name='job_datasets')
    op.drop_table('job_datasets')
    op.drop_index('ix_datasets_kind', table_name='datasets')
    op.drop_index('ix_datasets_created_at', table_name='datasets')
    op.drop_table('datasets')
