"""Retention (`store.retention`): checkpoints, idempotency keys and metric points of the past
are deleted, nothing recent or still running is; against a migrated database (SQLite, and
PostgreSQL when it runs) and a local artifact store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from store.artifacts import (
    ArtifactStore,
    ArtifactUnavailable,
    LocalArtifactStore,
    open_artifact_store,
)
from store.db import session_factory
from store.retention import (
    Retained,
    apply_retention,
    drop_old_checkpoints,
    drop_old_metrics,
)
from store.settings import Settings
from store.tables import IdempotencyKey, Job, JobEvent, JobLog, JobStatus, MetricPoint, utcnow
from tests.helpers import migrate

NOW = utcnow()
HOUR = timedelta(hours=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    database_url = ""
    if request.param == "postgresql":
        database_url = request.getfixturevalue("module_postgres_url")
    settings = Settings(var_dir=tmp_path, database_url=database_url)
    migrate(settings.resolved_database_url)
    yield settings
    with factory_of(settings).begin() as session:  # the module's PostgreSQL database is shared
        for table in (MetricPoint, IdempotencyKey, Job):
            session.execute(delete(table))


def factory_of(settings: Settings) -> sessionmaker[Session]:
    return session_factory(settings.resolved_database_url)


def add_job(
    settings: Settings,
    job_id: str,
    status: JobStatus,
    *,
    finished: datetime | None = None,
    checkpoint: bool = True,
    points: int = 0,
) -> str | None:
    """A job row (and its checkpoint file, and metric points); returns the checkpoint URI."""
    uri = None
    if checkpoint:
        uri = artifacts_of(settings).put(f"checkpoints/{job_id}/1.pt", b"checkpoint")
    with factory_of(settings).begin() as session:
        session.add(
            Job(
                id=job_id,
                algorithm="dqn",
                config={},
                seed=0,
                queue="gpu",
                status=status.value,
                finished_at=finished,
                checkpoint_step=100 if checkpoint else None,
                checkpoint_uri=uri,
            )
        )
        session.flush()
        session.add_all(
            MetricPoint(job_id=job_id, name="losses/td", step=s, value=1.0) for s in range(points)
        )
    return uri


def artifacts_of(settings: Settings) -> ArtifactStore:
    return open_artifact_store(settings)


def job(settings: Settings, job_id: str) -> Job:
    with factory_of(settings)() as session:
        row = session.get(Job, job_id)
        assert row is not None
        return row


def points_of(settings: Settings, job_id: str) -> int:
    with factory_of(settings)() as session:
        count = select(func.count()).where(MetricPoint.job_id == job_id)
        return int(session.scalar(count) or 0)


def test_checkpoints_of_jobs_finished_long_ago_are_deleted(settings: Settings) -> None:
    store = artifacts_of(settings)
    old = NOW - 25 * HOUR  # the default retention is 24 hours
    gone = {
        "succeeded": add_job(settings, "succeeded", JobStatus.succeeded, finished=old),
        "failed": add_job(settings, "failed", JobStatus.failed, finished=old),
        "cancelled": add_job(settings, "cancelled", JobStatus.cancelled, finished=old),
    }
    kept = {
        "recent": add_job(settings, "recent", JobStatus.cancelled, finished=NOW - HOUR),
        "running": add_job(settings, "running", JobStatus.running),
        "queued": add_job(settings, "queued", JobStatus.queued),  # resumes from it
    }

    assert apply_retention(settings, now=NOW) == Retained(checkpoints=3)
    for job_id, uri in gone.items():
        assert uri is not None and not store.exists(uri)
        row = job(settings, job_id)
        assert row.checkpoint_uri is None and row.checkpoint_step == 100  # how far it got
    for job_id, uri in kept.items():
        assert uri is not None and store.exists(uri)
        assert job(settings, job_id).checkpoint_uri == uri
    assert not apply_retention(settings, now=NOW)  # nothing left to do

    # The recent one goes once it is old enough, and at once with a retention of 0.
    assert apply_retention(settings, now=NOW + 24 * HOUR) == Retained(checkpoints=1)
    add_job(settings, "just-now", JobStatus.failed, finished=NOW)
    at_once = settings.model_copy(update={"checkpoint_retention_hours": 0.0})
    assert apply_retention(at_once, now=NOW + HOUR) == Retained(checkpoints=1)
    assert job(settings, "running").checkpoint_uri == kept["running"]


def test_checkpoint_deletion_is_bounded_and_survives_missing_or_foreign_files(
    settings: Settings,
) -> None:
    store, factory = artifacts_of(settings), factory_of(settings)
    old = NOW - 25 * HOUR
    for n in range(3):
        add_job(settings, f"job{n}", JobStatus.failed, finished=old - n * HOUR)
    assert drop_old_checkpoints(factory, store, before=NOW - 24 * HOUR, limit=2) == 2
    assert job(settings, "job2").checkpoint_uri is None  # the oldest first
    assert job(settings, "job0").checkpoint_uri is not None

    uri = job(settings, "job0").checkpoint_uri
    assert uri is not None
    store.delete(uri)  # a pass interrupted after deleting the file
    add_job(settings, "elsewhere", JobStatus.failed, finished=old, checkpoint=False)
    with factory.begin() as session:
        row = session.get(Job, "elsewhere")
        assert row is not None
        row.checkpoint_uri = "file:///somewhere/else/checkpoints/elsewhere.pt"
    assert drop_old_checkpoints(factory, store, before=NOW - 24 * HOUR) == 2
    assert job(settings, "job0").checkpoint_uri is None
    assert job(settings, "elsewhere").checkpoint_uri is None  # logged, not retried forever


def test_an_unreachable_store_leaves_checkpoints_for_the_next_pass(settings: Settings) -> None:
    class Unreachable(LocalArtifactStore):
        def delete(self, uri: str) -> None:
            raise ArtifactUnavailable("the store is down")

    uri = add_job(settings, "job", JobStatus.failed, finished=NOW - 25 * HOUR)
    down = Unreachable(settings.var_dir / "artifacts")
    assert drop_old_checkpoints(factory_of(settings), down, before=NOW - 24 * HOUR) == 0
    assert job(settings, "job").checkpoint_uri == uri  # no error: the sweep goes on
    assert apply_retention(settings, now=NOW) == Retained(checkpoints=1)


def test_idempotency_keys_expire(settings: Settings) -> None:
    with factory_of(settings).begin() as session:
        for key, age in (("old", 25 * HOUR), ("recent", HOUR)):
            session.add(
                IdempotencyKey(
                    scope="jobs",
                    key=key,
                    request_hash="0" * 64,
                    resource_id=key,
                    created_at=NOW - age,
                )
            )
    assert apply_retention(settings, now=NOW) == Retained(idempotency_keys=1)
    with factory_of(settings)() as session:
        assert session.scalars(select(IdempotencyKey.key)).all() == ["recent"]


def test_metric_points_are_kept_unless_a_retention_is_set(settings: Settings) -> None:
    long_ago = NOW - timedelta(days=40)
    add_job(settings, "old", JobStatus.succeeded, finished=long_ago, checkpoint=False, points=5)
    add_job(settings, "older", JobStatus.failed, finished=long_ago, checkpoint=False, points=3)
    add_job(settings, "recent", JobStatus.succeeded, finished=NOW, checkpoint=False, points=4)
    add_job(settings, "running", JobStatus.running, checkpoint=False, points=2)
    assert settings.metric_retention_days == 0
    assert not apply_retention(settings, now=NOW)  # 0: kept forever
    assert points_of(settings, "old") == 5

    thirty_days = settings.model_copy(update={"metric_retention_days": 30.0})
    assert apply_retention(thirty_days, now=NOW) == Retained(metric_points=8)
    assert [points_of(settings, j) for j in ("old", "older", "recent", "running")] == [0, 0, 4, 2]
    assert job(settings, "old").status == "succeeded"  # the job itself stays

    add_job(settings, "more", JobStatus.failed, finished=long_ago, checkpoint=False, points=1)
    factory = factory_of(settings)
    with factory.begin() as session:  # the job's events and log go with its points
        session.add(JobEvent(job_id="more", kind="status", data={"status": "failed"}))
        session.add(JobLog(job_id="more", attempt=1, level="INFO", logger="t", message="m"))
    assert drop_old_metrics(factory, before=NOW - timedelta(days=30), limit=1) == 1
    assert drop_old_metrics(factory, before=NOW - timedelta(days=30)) == 0
    with factory() as session:
        for table in (JobEvent, JobLog):
            assert session.scalar(select(func.count()).select_from(table)) == 0
