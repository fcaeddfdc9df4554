"""Retention: what jobs leave behind is deleted after a while, so nothing grows without bound.

Every worker's sweeper calls `apply_retention` on each pass. It deletes:

- the checkpoints of jobs finished more than `CHECKPOINT_RETENTION_HOURS` ago (until then a
  succeeded job's final state lets its model's training continue, and a cancelled one can be
  resumed): the file through the artifact store, then `jobs.checkpoint_uri` is cleared
  (`checkpoint_step` stays, as the record of how far the job got);
- `Idempotency-Key` records older than `IDEMPOTENCY_RETENTION_HOURS`: a retry after that
  creates a new resource;
- the metric points, events and log records of jobs finished more than
  `METRIC_RETENTION_DAYS` ago, when that is above 0 (0 keeps them forever, the default).

Query results expire on their own (`worker.queries.drop_expired_results`). Each pass does a
bounded amount of work (`limit` jobs per kind) in short transactions, so a backlog (the first
pass after retention is turned on) is worked off over a few sweeps without holding SQLite's
write lock for long. Functions take keyword arguments and raise no HTTP errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, exists, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ml.core.errors import ArtifactError
from store.artifacts import ArtifactStore, ArtifactUnavailable, open_artifact_store
from store.db import session_factory, session_scope
from store.settings import Settings
from store.tables import IdempotencyKey, Job, JobEvent, JobLog, JobStatus, MetricPoint, utcnow

log = logging.getLogger(__name__)

FINISHED = [status.value for status in JobStatus if status.finished]
LIMIT = 100  # jobs whose checkpoint or metric points one pass deletes, at most


@dataclass(frozen=True)
class Retained:
    """What one pass deleted."""

    checkpoints: int = 0
    idempotency_keys: int = 0
    metric_points: int = 0

    def __bool__(self) -> bool:
        return bool(self.checkpoints or self.idempotency_keys or self.metric_points)


def apply_retention(settings: Settings, *, now: datetime | None = None) -> Retained:
    """One pass of every retention rule, with `settings`' windows (the sweeper's call)."""
    factory = session_factory(settings.resolved_database_url)
    now = now or utcnow()
    checkpoint_window = timedelta(hours=settings.checkpoint_retention_hours)
    retained = Retained(
        checkpoints=drop_old_checkpoints(
            factory, open_artifact_store(settings), before=now - checkpoint_window
        ),
        idempotency_keys=drop_old_idempotency_keys(
            factory, before=now - timedelta(hours=settings.idempotency_retention_hours)
        ),
        metric_points=(
            drop_old_metrics(factory, before=now - timedelta(days=settings.metric_retention_days))
            if settings.metric_retention_days > 0
            else 0
        ),
    )
    if retained:
        log.info(
            "retention: deleted %d checkpoints, %d idempotency keys, %d metric points",
            retained.checkpoints,
            retained.idempotency_keys,
            retained.metric_points,
        )
    return retained


def _finished_before(before: datetime) -> Any:
    return Job.status.in_(FINISHED) & (Job.finished_at < before)


def drop_old_checkpoints(
    factory: sessionmaker[Session],
    artifacts: ArtifactStore,
    *,
    before: datetime,
    limit: int = LIMIT,
) -> int:
    """Delete the checkpoints of up to `limit` jobs finished before `before`; how many.

    The file goes first, then the column: a pass interrupted between the two finds the job
    again and deleting a missing file is a no-op. A finished job's checkpoint record never
    changes (only a lease holder records one), so clearing it races with nothing. A store
    that cannot be reached ends the pass with a warning (the next sweep retries; the rest
    of the sweep goes on); a URI the store refuses (written under another `ARTIFACT_URL`)
    is logged and forgotten."""
    with session_scope(factory) as session:
        rows = session.execute(
            select(Job.id, Job.checkpoint_uri)
            .where(_finished_before(before), Job.checkpoint_uri.is_not(None))
            .order_by(Job.finished_at)
            .limit(limit)
        ).all()
    deleted = 0
    for job_id, uri in rows:
        assert uri is not None
        try:
            artifacts.delete(uri)
        except ArtifactUnavailable as exc:
            log.warning("retention: checkpoints not deleted this time: %s", exc)
            break
        except ArtifactError as exc:
            log.warning("job %s: checkpoint %s not deleted: %s", job_id, uri, exc)
        with session_scope(factory) as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.checkpoint_uri == uri)
                .values(checkpoint_uri=None)
            )
        deleted += 1
    return deleted


def drop_old_idempotency_keys(factory: sessionmaker[Session], *, before: datetime) -> int:
    """Delete the `Idempotency-Key` records made before `before`; how many."""
    with session_scope(factory) as session:
        deleted = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < before))
        return cast(CursorResult[Any], deleted).rowcount


def drop_old_metrics(
    factory: sessionmaker[Session], *, before: datetime, limit: int = LIMIT
) -> int:
    """Delete the metric points, events and log records of up to `limit` jobs finished before
    `before`, one job per transaction; how many points."""
    history = (MetricPoint, JobEvent, JobLog)
    has_points = or_(*(exists().where(table.job_id == Job.id) for table in history))
    with session_scope(factory) as session:
        job_ids = session.scalars(
            select(Job.id)
            .where(_finished_before(before), has_points)
            .order_by(Job.finished_at)
            .limit(limit)
        ).all()
    deleted = 0
    for job_id in job_ids:
        with session_scope(factory) as session:
            result = session.execute(delete(MetricPoint).where(MetricPoint.job_id == job_id))
            deleted += cast(CursorResult[Any], result).rowcount
            for table in (JobEvent, JobLog):
                session.execute(delete(table).where(table.job_id == job_id))
    return deleted
