"""tenants, API keys, quotas

Every resource gains the tenant it belongs to (rows from before are the `default` tenant's,
the one an open API serves), registered names and idempotency keys become per tenant (the
tenant joins their primary keys), datasets are deduplicated per tenant, jobs record the keys
that submitted and cancelled them, and API keys and per-tenant quotas get tables of their own.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 18:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
# Names SQLite's unnamed constraints get when a batch operation reflects them.
NAMING = {
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _tenant(nullable: bool = False) -> sa.Column:
    return sa.Column("tenant", sa.String(length=64), nullable=nullable, server_default="default")


def _primary_key_name(table: str) -> str:
    """PostgreSQL names a table's primary key `<table>_pkey`; SQLite's are unnamed."""
    return f"{table}_pkey" if op.get_bind().dialect.name == "postgresql" else f"pk_{table}"


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.Column("last_used_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prefix"),
    )
    op.create_index("ix_api_keys_tenant", "api_keys", ["tenant"])
    op.create_table(
        "tenant_quotas",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("active_jobs", sa.Integer(), nullable=True),
        sa.Column("storage_bytes", sa.BigInteger(), nullable=True),
        sa.Column("queries_per_minute", sa.Integer(), nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("tenant"),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(_tenant())
        batch.add_column(sa.Column("submitted_by", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("cancelled_by", sa.String(length=32), nullable=True))
        batch.create_index("ix_jobs_tenant", ["tenant"])
    with op.batch_alter_table("models") as batch:
        batch.add_column(_tenant())
        batch.create_index("ix_models_tenant", ["tenant"])
    with op.batch_alter_table("datasets", naming_convention=NAMING) as batch:
        batch.add_column(_tenant())
        batch.create_index("ix_datasets_tenant", ["tenant"])
        batch.drop_constraint(_unique_name("datasets"), type_="unique")
        batch.create_unique_constraint(
            "uq_datasets_tenant_kind_sha256", ["tenant", "kind", "sha256"]
        )

    # The tenant joins the primary keys of names, aliases and idempotency keys.
    with op.batch_alter_table("model_aliases", naming_convention=NAMING) as batch:
        batch.drop_constraint(_alias_fk_name(), type_="foreignkey")
    for table, columns in (
        ("model_versions", ["tenant", "name", "version"]),
        ("model_aliases", ["tenant", "name", "alias"]),
        ("idempotency_keys", ["tenant", "scope", "key"]),
    ):
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.add_column(_tenant())
            batch.drop_constraint(_primary_key_name(table), type_="primary")
            batch.create_primary_key(_primary_key_name(table), columns)
    with op.batch_alter_table("model_aliases") as batch:
        batch.create_foreign_key(
            "fk_model_aliases_version",
            "model_versions",
            ["tenant", "name", "version"],
            ["tenant", "name", "version"],
        )


def _unique_name(table: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return "datasets_kind_sha256_key"
    return "uq_datasets_kind_sha256"


def _alias_fk_name() -> str:
    if op.get_bind().dialect.name == "postgresql":
        return "model_aliases_name_version_fkey"
    return "fk_model_aliases_name_version_model_versions"


def downgrade() -> None:
    # Names and idempotency keys of tenants other than `default` cannot keep their meaning
    # in a schema without tenants: they are dropped, as are the keys and quotas.
    for table in ("model_aliases", "model_versions", "idempotency_keys"):
        op.execute(sa.text(f"DELETE FROM {table} WHERE tenant <> 'default'"))
    with op.batch_alter_table("model_aliases") as batch:
        batch.drop_constraint("fk_model_aliases_version", type_="foreignkey")
    for table, columns in (
        ("model_versions", ["name", "version"]),
        ("model_aliases", ["name", "alias"]),
        ("idempotency_keys", ["scope", "key"]),
    ):
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.drop_constraint(_primary_key_name(table), type_="primary")
            batch.create_primary_key(_primary_key_name(table), columns)
            batch.drop_column("tenant")
    with op.batch_alter_table("model_aliases") as batch:
        batch.create_foreign_key(
            _alias_fk_name(), "model_versions", ["name", "version"], ["name", "version"]
        )
    op.execute(
        sa.text(
            "DELETE FROM datasets WHERE id NOT IN (SELECT min(id) FROM datasets "
            "GROUP BY kind, sha256)"
        )
    )
    with op.batch_alter_table("datasets", naming_convention=NAMING) as batch:
        batch.drop_constraint("uq_datasets_tenant_kind_sha256", type_="unique")
        batch.create_unique_constraint(_unique_name("datasets"), ["kind", "sha256"])
        batch.drop_index("ix_datasets_tenant")
        batch.drop_column("tenant")
    with op.batch_alter_table("models") as batch:
        batch.drop_index("ix_models_tenant")
        batch.drop_column("tenant")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_tenant")
        batch.drop_column("cancelled_by")
        batch.drop_column("submitted_by")
        batch.drop_column("tenant")
    op.drop_table("tenant_quotas")
    op.drop_index("ix_api_keys_tenant", table_name="api_keys")
    op.drop_table("api_keys")
