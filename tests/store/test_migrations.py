"""The migrations create exactly the schema the models describe, on both backends."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from tests.helpers import ROOT, migrate


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_models_and_migrations_agree(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    else:
        url = request.getfixturevalue("module_postgres_url")
    migrate(url)
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    command.check(config)  # raises when autogenerate would emit any operation


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_models_move_out_of_jobs_and_back(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """0002 gives every succeeded job's model a `models` row of its own (with a file URI and
    the file's digest), and its downgrade puts them back."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    else:
        url = request.getfixturevalue("module_postgres_url")
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    command.downgrade(config, "base")  # the module's PostgreSQL database may be at head
    command.upgrade(config, "0001")
    model_file = tmp_path / "model.pt"
    model_file.write_bytes(b"model bytes")
    engine = sa.create_engine(url)
    columns = (
        "id, algorithm, config, seed, tags, queue, status, cancel_requested, progress_step, "
        "attempt, lost_workers, attempt_start_step, created_at, updated_at"
    )
    with engine.begin() as conn:
        for job_id, status, path in (
            ("a" * 32, "succeeded", str(model_file)),
            ("b" * 32, "failed", None),
        ):
            conn.execute(
                sa.text(
                    f"INSERT INTO jobs ({columns}, artifact_path, model_metadata) VALUES "
                    f"(:id, 'value_iteration', '{{}}', 0, '{{}}', 'cpu', :status, false, 0, 1, 0, "
                    "0, :now, :now, :path, :meta)"
                ),
                {
                    "id": job_id,
                    "status": status,
                    "path": path,
                    "now": datetime.now(UTC),
                    "meta": json.dumps({"kind": "value_iteration", "shapes": {"n_states": 4}}),
                },
            )
        conn.execute(
            sa.text("INSERT INTO metrics (job_id, name, step, value) VALUES (:id, 'x', 1, 2.0)"),
            {"id": "a" * 32},
        )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        # SQLite rebuilds `jobs` to drop columns: rows referring to it must survive that.
        assert conn.execute(sa.text("SELECT count(*) FROM metrics")).scalar_one() == 1
        rows = conn.execute(
            sa.text(
                "SELECT job_id, kind, artifact_uri, size_bytes, sha256, model_metadata FROM models"
            )
        ).all()
        assert len(rows) == 1
        job_id, kind, uri, size, digest, meta = rows[0]
        assert job_id == "a" * 32 and kind == "value_iteration"
        assert uri == model_file.resolve().as_uri() and size == len(b"model bytes")
        assert digest == hashlib.sha256(b"model bytes").hexdigest()
        assert (json.loads(meta) if isinstance(meta, str) else meta)["shapes"] == {"n_states": 4}
        kinds = conn.execute(sa.text("SELECT DISTINCT kind FROM jobs")).scalars().all()
        assert kinds == ["train"]
    command.downgrade(config, "0001")
    with engine.connect() as conn:
        back = conn.execute(
            sa.text("SELECT artifact_path FROM jobs WHERE status = 'succeeded'")
        ).scalar_one()
        assert back == str(model_file.resolve())
    command.upgrade(config, "head")
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_rows_from_before_tenants_are_the_default_tenant_s(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """0004 gives every existing row the tenant `default` (the one an open API serves) and
    moves the tenant into the keys of names and idempotency keys; its downgrade keeps the
    default tenant's rows."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    else:
        url = request.getfixturevalue("module_postgres_url")
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    command.downgrade(config, "base")
    command.upgrade(config, "0003")
    engine = sa.create_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO models (id, kind, algorithm, model_metadata, artifact_uri, "
                "size_bytes, sha256, created_at) VALUES ('m1', 'k', 'a', '{}', 'u', 1, 's', :now)"
            ),
            {"now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO model_versions (name, version, model_id, created_at) "
                "VALUES ('planner', 1, 'm1', :now)"
            ),
            {"now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO model_aliases (name, alias, version, updated_at) "
                "VALUES ('planner', 'prod', 1, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO idempotency_keys (scope, key, request_hash, resource_id, "
                "created_at) VALUES ('jobs', 'k1', 'h', 'r', :now)"
            ),
            {"now": now},
        )
    command.upgrade(config, "head")
    with engine.begin() as conn:
        for table in ("models", "model_versions", "model_aliases", "idempotency_keys"):
            tenants = conn.execute(sa.text(f"SELECT DISTINCT tenant FROM {table}")).scalars()
            assert list(tenants) == ["default"], table
        # Another tenant may now use the same name and key.
        conn.execute(
            sa.text(
                "INSERT INTO model_versions (tenant, name, version, model_id, created_at) "
                "VALUES ('team-b', 'planner', 1, 'm1', :now)"
            ),
            {"now": now},
        )
    command.downgrade(config, "0003")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, version FROM model_versions")).all()
        assert rows == [("planner", 1)]
        alias = conn.execute(sa.text("SELECT alias FROM model_aliases")).scalar_one()
        assert alias == "prod"
    command.upgrade(config, "head")
    engine.dispose()
