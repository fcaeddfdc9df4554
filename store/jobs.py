"""Job state transitions: the one place the API and the worker change a job's state.

Lifecycle: queued -> running -> succeeded | failed | cancelled. A running job whose lease
expired (its worker died) goes back to queued and is resumed from its last checkpoint by the
next worker that claims it. Every transition is a single conditional UPDATE, so two workers
racing for a job, or a stale worker finishing late, cannot both win; everything else a worker
writes (metric points, progress, checkpoint records) is fenced the same way (`hold`), so a
worker that lost its lease changes nothing.

The database, not the broker, says what is still to run: `requeue_orphans` finds every job
that needs a message (a lost worker, a failed send, a message the broker lost), and a send
is recorded (`mark_enqueued`) only once it succeeded.

Functions take a Session and keyword arguments and raise no HTTP errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Executable, and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from store import events
from store.db import page, sort_order
from store.tables import (
    DEFAULT_TENANT,
    IdempotencyKey,
    Job,
    JobDataset,
    JobEvent,
    JobKind,
    JobLog,
    JobStatus,
    MetricPoint,
    TrainedModelRow,
    utcnow,
)

RUNNING = JobStatus.running.value
QUEUED = JobStatus.queued.value
ACTIVE = (QUEUED, RUNNING)


class JobNotFound(LookupError):
    pass


class InvalidTransition(RuntimeError):
    """The job is not in a state that allows what was asked (e.g. cancelling a finished job)."""


def _changed(session: Session, statement: Executable) -> int:
    """Run an UPDATE and say how many rows it changed: how a conditional transition knows
    whether it won."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount


def new_job_id() -> str:
    return uuid.uuid4().hex


def create_job(
    session: Session,
    *,
    algorithm: str,
    config: dict[str, Any],
    seed: int,
    queue: str,
    name: str | None = None,
    tags: dict[str, str] | None = None,
    register_as: dict[str, Any] | None = None,
    kind: JobKind = JobKind.train,
    cache_key: str | None = None,
    max_runtime_seconds: float | None = None,
    tenant: str = DEFAULT_TENANT,
    submitted_by: str | None = None,
    model_refs: dict[str, str] | None = None,
    webhook: dict[str, Any] | None = None,
) -> Job:
    job = Job(
        id=new_job_id(),
        tenant=tenant,
        submitted_by=submitted_by,
        max_runtime_seconds=max_runtime_seconds,
        kind=kind.value,
        register_as=register_as,
        model_refs=model_refs or None,
        cache_key=cache_key,
        warnings=[],
        algorithm=algorithm,
        config=config,
        seed=seed,
        queue=queue,
        name=name,
        tags=tags or {},
        status=QUEUED,
        cancel_requested=False,
        progress_step=0,
        attempt=0,
        lost_workers=0,
        attempt_start_step=0,
        webhook=webhook,
        webhook_attempts=0,
    )
    session.add(job)
    session.flush()
    events.record_status(session, job.id)
    return job


def _ended(session: Session, job_id: str) -> None:
    """What follows every transition into a final status, in its transaction: the status
    event, and the job's webhook (if it has one) due at once."""
    events.record_status(session, job_id)
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.webhook.is_not(None), Job.webhook_status.is_(None))
        .values(webhook_status="pending", webhook_next_at=utcnow())
    )


def get_job(session: Session, job_id: str, *, tenant: str | None = None) -> Job:
    """The job; `JobNotFound` if there is none, or if it is another tenant's (`tenant` given):
    a client cannot tell the two apart. Workers and the sweeper pass no tenant."""
    job = session.get(Job, job_id)
    if job is None or (tenant is not None and job.tenant != tenant):
        raise JobNotFound(job_id)
    return job


def count_active(session: Session, *, tenant: str) -> int:
    """The tenant's queued and running training jobs (what the active-jobs quota counts)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.tenant == tenant, Job.kind == JobKind.train.value, Job.status.in_(ACTIVE))
        )
        or 0
    )


def list_jobs(
    session: Session,
    *,
    status: str | None = None,
    algorithm: str | None = None,
    name: str | None = None,
    tags: Mapping[str, str | None] | None = None,
    sort: str = "-created_at",
    limit: int = 50,
    offset: int = 0,
    kind: JobKind = JobKind.train,
    tenant: str = DEFAULT_TENANT,
) -> tuple[Sequence[Job], int]:
    """A page of the tenant's jobs of `kind`: with `name`, of that name; with `tags`, carrying
    each tag (with the given value, or any value for None); in the order of `sort`
    (`JOB_SORTS`)."""
    filters = [Job.tenant == tenant, Job.kind == kind.value]
    if status:
        filters.append(Job.status == status)
    if algorithm:
        filters.append(Job.algorithm == algorithm)
    if name is not None:
        filters.append(Job.name == name)
    for key, value in (tags or {}).items():
        tag = Job.tags[key].as_string()
        filters.append(tag.is_not(None) if value is None else tag == value)
    return page(
        session, Job, filters=filters, newest_first=Job.created_at, limit=limit, offset=offset,
        order=sort_order(sort, JOB_SORTS),
    )  # fmt: skip


# What a list of jobs sorts by: a column's name, "-" before it for descending.
JOB_SORTS = {
    "created_at": Job.created_at,
    "finished_at": Job.finished_at,
    "name": Job.name,
    "status": Job.status,
    "algorithm": Job.algorithm,
}


def mark_enqueued(session: Session, *, job_id: str) -> None:
    """Record that the broker accepted a message for the job. Called only after a send
    succeeded: a job whose send failed keeps its old `enqueued_at` (or none), so the sweeper
    sends it again."""
    session.execute(update(Job).where(Job.id == job_id).values(enqueued_at=utcnow()))


def request_cancel(session: Session, *, job_id: str, cancelled_by: str | None = None) -> Job:
    """A queued job is cancelled at once (it will never run); a running one is flagged and
    stops at its next step boundary. `cancelled_by` records the API key that asked."""
    job = get_job(session, job_id)
    now = utcnow()
    done = _changed(
        session,
        update(Job)
        .where(Job.id == job_id, Job.status == QUEUED)
        .values(
            status=JobStatus.cancelled.value,
            cancel_requested=True,
            cancelled_by=cancelled_by,
            finished_at=now,
        ),
    )
    if done:
        _ended(session, job_id)
    else:
        flagged = _changed(
            session,
            update(Job)
            .where(Job.id == job_id, Job.status == RUNNING)
            .values(cancel_requested=True, cancelled_by=cancelled_by),
        )
        if not flagged:
            session.refresh(job)
            raise InvalidTransition(f"job {job_id} is already {job.status}")
    session.refresh(job)
    return job


@dataclass(frozen=True)
class Claim:
    job: Job | None
    reason: str

    @property
    def claimed(self) -> bool:
        return self.job is not None


def claim(session: Session, *, job_id: str, worker: str, lease_seconds: float) -> Claim:
    """Take the lease of a queued job, or of a running one whose lease expired.

    A second delivery of the same message finds a live lease and leaves; a finished or
    cancelled job is never run again (the task is idempotent).
    """
    now = utcnow()
    job = session.get(Job, job_id)
    if job is None:
        return Claim(None, "no such job")
    claimable = or_(
        Job.status == QUEUED,
        and_(Job.status == RUNNING, Job.lease_expires_at < now),
    )
    taken = _changed(
        session,
        update(Job)
        .where(Job.id == job_id, claimable, Job.cancel_requested.is_(False))
        .values(
            status=RUNNING,
            attempt=Job.attempt + 1,
            worker=worker,
            heartbeat_at=now,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            started_at=func.coalesce(Job.started_at, now),
            attempt_started_at=now,
            attempt_start_step=func.coalesce(Job.checkpoint_step, 0),
            progress_step=func.coalesce(Job.checkpoint_step, 0),
            error=None,
        ),
    )
    if taken:
        events.record_status(session, job_id)
    session.refresh(job)
    if taken:
        return Claim(job, "claimed")
    if job.status == RUNNING:
        return Claim(None, f"held by {job.worker} until {job.lease_expires_at}")
    return Claim(None, f"job is {job.status}")


@dataclass(frozen=True)
class LeaseState:
    """What a heartbeat learned: whether the lease is still ours and whether to stop."""

    held: bool
    cancel_requested: bool


def heartbeat(
    session: Session, *, job_id: str, attempt: int, lease_seconds: float, renew: bool = True
) -> LeaseState:
    now = utcnow()
    if renew:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.attempt == attempt, Job.status == RUNNING)
            .values(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_seconds))
        )
    row = session.execute(
        select(Job.status, Job.attempt, Job.cancel_requested).where(Job.id == job_id)
    ).one_or_none()
    if row is None:
        return LeaseState(held=False, cancel_requested=True)
    held = row.status == RUNNING and row.attempt == attempt
    return LeaseState(held=held, cancel_requested=bool(row.cancel_requested))


def _owned(job_id: str, attempt: int) -> Any:
    return and_(Job.id == job_id, Job.attempt == attempt, Job.status == RUNNING)


def hold(session: Session, *, job_id: str, attempt: int) -> bool:
    """Whether `attempt` still holds the job, locking its row until the transaction ends.

    The fence of every write a worker makes besides the job's row (metric points): the no-op
    UPDATE takes the row's lock (PostgreSQL) or the database's write lock (SQLite), so a claim
    by another worker waits until this transaction commits, and the new owner's
    `start_resume` then sees (and trims) what it wrote. A worker that lost its lease gets
    False and writes nothing."""
    return bool(
        _changed(
            session,
            update(Job).where(_owned(job_id, attempt)).values(progress_step=Job.progress_step),
        )
    )


def record_progress(
    session: Session, *, job_id: str, attempt: int, step: int, total: int | None
) -> None:
    session.execute(
        update(Job).where(_owned(job_id, attempt)).values(progress_step=step, progress_total=total)
    )


@dataclass(frozen=True)
class CheckpointRecord:
    """What `record_checkpoint` did: whether the checkpoint is now the job's current one, and
    the file it replaced (the caller deletes it)."""

    recorded: bool
    replaced_uri: str | None = None

    def __bool__(self) -> bool:
        return self.recorded


def record_checkpoint(
    session: Session, *, job_id: str, attempt: int, step: int, uri: str
) -> CheckpointRecord:
    """Make the checkpoint file at `uri` (written by `attempt`) the job's current one, if
    `attempt` still holds the job.

    Each attempt writes files of its own, so a worker that lost its lease never overwrites
    the owner's checkpoint; this record is what decides which file a resume reads. A fenced
    out writer gets `recorded=False` and deletes its file; the owner deletes `replaced_uri`."""
    if not hold(session, job_id=job_id, attempt=attempt):
        return CheckpointRecord(recorded=False)
    replaced = session.scalar(select(Job.checkpoint_uri).where(Job.id == job_id))
    session.execute(
        update(Job).where(_owned(job_id, attempt)).values(checkpoint_step=step, checkpoint_uri=uri)
    )
    return CheckpointRecord(recorded=True, replaced_uri=replaced if replaced != uri else None)


def current_checkpoint(session: Session, *, job_id: str) -> str | None:
    return session.scalar(select(Job.checkpoint_uri).where(Job.id == job_id))


def start_resume(session: Session, *, job_id: str, attempt: int, step: int) -> bool:
    """Forget metric points written after the checkpoint we resume from (by an attempt that
    got further before it was lost), so a resumed run's series has no duplicate steps."""
    if not hold(session, job_id=job_id, attempt=attempt):
        return False
    session.execute(
        delete(MetricPoint).where(MetricPoint.job_id == job_id, MetricPoint.step > step)
    )
    session.execute(update(Job).where(_owned(job_id, attempt)).values(resumed_from_step=step))
    return True


def add_metrics(session: Session, *, job_id: str, points: Iterable[tuple[str, int, float]]) -> None:
    """Insert metric points. A worker calls it in a transaction that `hold`s the job, so a
    worker that lost its lease adds nothing."""
    rows = [{"job_id": job_id, "name": n, "step": s, "value": v} for n, s, v in points]
    if rows:
        session.execute(insert(MetricPoint), rows)


def finish(
    session: Session,
    *,
    job_id: str,
    attempt: int,
    status: JobStatus,
    error: str | None = None,
    error_code: str | None = None,
    **extra: Any,
) -> bool:
    """End a running job; a worker that lost its lease changes nothing. `extra` sets further
    columns in the same UPDATE (a query job's result)."""
    values: dict[str, Any] = {
        "status": status.value,
        "finished_at": utcnow(),
        "error": error,
        "error_code": error_code,
        "lease_expires_at": None,
        **extra,
    }
    if not _changed(session, update(Job).where(_owned(job_id, attempt)).values(**values)):
        return False
    _ended(session, job_id)
    return True


MAX_WARNINGS = 100


def add_warnings(
    session: Session, *, job_id: str, attempt: int, warnings: Sequence[dict[str, Any]]
) -> None:
    """Append to the job's warnings (at most MAX_WARNINGS are kept: the first ones, which
    say when trouble started)."""
    current = session.scalar(select(Job.warnings).where(_owned(job_id, attempt)))
    if current is None or not warnings:
        return
    merged = [*current, *warnings][:MAX_WARNINGS]
    session.execute(update(Job).where(_owned(job_id, attempt)).values(warnings=merged))
    events.record_warnings(session, job_id, list(warnings))


def release(session: Session, *, job_id: str, attempt: int) -> bool:
    """Hand a running job back to the queue (its worker is shutting down); it keeps its
    checkpoint, so whoever claims it next resumes. The caller sends its message and then
    calls `mark_enqueued`; until then the sweeper counts it as unsent."""
    released = _changed(
        session,
        update(Job)
        .where(_owned(job_id, attempt))
        .values(status=QUEUED, worker=None, lease_expires_at=None, enqueued_at=None),
    )
    if released:
        events.record_status(session, job_id)
    return bool(released)


@dataclass(frozen=True)
class Orphan:
    job_id: str
    queue: str
    # "orphaned": its worker was lost; "unsent": no send of it ever succeeded; "stale": sent,
    # but queued for longer than the resend threshold (the message may have been lost).
    reason: str = "orphaned"


# Resends of a job that stays queued back off: the wait doubles with the time it has been
# waiting, up to this many times the resend threshold, so a long queue is not flooded with
# duplicates while a lost message is still re-sent within minutes.
MAX_RESEND_BACKOFF = 8


def requeue_orphans(
    session: Session,
    *,
    max_attempts: int,
    resend_after_seconds: float = 30.0,
    reclaim_expired: bool = True,
) -> list[Orphan]:
    """Find jobs that need a (new) broker message; the database, not the broker, says what
    is still to run.

    - running jobs whose lease expired: their worker died. They go back to `queued` (or to
      `failed` after `max_attempts`) and keep their checkpoint, so the next claim resumes.
      `reclaim_expired=False` skips this (the caller could not reach the database a moment
      ago, so neither could the lease holders: their leases expired without them dying).
    - queued jobs whose last successful send (or, never sent, their creation) is older than
      `resend_after_seconds`: a send that failed, or a message the broker lost (restarted
      without persistence). Resends of the same job back off (`MAX_RESEND_BACKOFF`).

    The caller sends one message per returned job and calls `mark_enqueued` for each send
    that succeeded: nothing here records a send. Duplicates are harmless because claiming is
    atomic.
    """
    now = utcnow()
    orphans: list[Orphan] = []
    if reclaim_expired:
        orphans.extend(_requeue_expired(session, now=now, max_attempts=max_attempts))
    seen = {o.job_id for o in orphans}
    threshold = timedelta(seconds=resend_after_seconds)
    stale = select(Job).where(
        Job.status == QUEUED,
        func.coalesce(Job.enqueued_at, Job.created_at) < now - threshold,
    )
    for job in session.scalars(stale.order_by(Job.created_at)).all():
        if job.id in seen:
            continue
        if job.enqueued_at is None:
            orphans.append(Orphan(job.id, job.queue, "unsent"))
        elif now - job.enqueued_at >= _resend_wait(job, threshold):
            orphans.append(Orphan(job.id, job.queue, "stale"))
    return orphans


def _resend_wait(job: Job, threshold: timedelta) -> timedelta:
    """How long after its last send a queued job is sent again: the threshold, or as long as
    it had already waited when it was last sent (capped), so resends back off. The wait
    starts at its creation, or at its last heartbeat if it ran before (it went back to the
    queue about then)."""
    assert job.enqueued_at is not None
    waiting_since = job.heartbeat_at or job.created_at
    waited = job.enqueued_at - waiting_since
    return min(max(threshold, waited), threshold * MAX_RESEND_BACKOFF)


def _requeue_expired(session: Session, *, now: datetime, max_attempts: int) -> list[Orphan]:
    expired = and_(Job.status == RUNNING, Job.lease_expires_at < now)
    orphans: list[Orphan] = []
    for job in session.scalars(select(Job).where(expired)).all():
        lost = job.lost_workers + 1  # releases at a clean shutdown do not count
        if lost >= max_attempts:
            failed = _changed(
                session,
                update(Job)
                .where(Job.id == job.id, expired)
                .values(
                    status=JobStatus.failed.value,
                    finished_at=now,
                    lease_expires_at=None,
                    lost_workers=lost,
                    error=f"worker lost {lost} times (last: {job.worker}); giving up",
                    error_code="worker_lost",
                ),
            )
            if failed:
                _ended(session, job.id)
            continue
        if job.cancel_requested:
            cancelled = _changed(
                session,
                update(Job)
                .where(Job.id == job.id, expired)
                .values(status=JobStatus.cancelled.value, finished_at=now, lease_expires_at=None),
            )
            if cancelled:
                _ended(session, job.id)
            continue
        moved = _changed(
            session,
            update(Job)
            .where(Job.id == job.id, expired)
            .values(
                status=QUEUED,
                worker=None,
                lease_expires_at=None,
                enqueued_at=None,  # recorded when a send succeeds
                lost_workers=lost,
            ),
        )
        if moved:
            events.record_status(session, job.id)
            orphans.append(Orphan(job.id, job.queue))
    return orphans


def metric_series(
    session: Session, *, job_id: str, names: Sequence[str] | None = None
) -> dict[str, tuple[list[int], list[float]]]:
    query = select(MetricPoint.name, MetricPoint.step, MetricPoint.value).where(
        MetricPoint.job_id == job_id
    )
    if names:
        query = query.where(MetricPoint.name.in_(names))
    series: dict[str, tuple[list[int], list[float]]] = {}
    for name, step, value in session.execute(
        query.order_by(MetricPoint.name, MetricPoint.step, MetricPoint.id)
    ):
        steps, values = series.setdefault(name, ([], []))
        steps.append(step)
        values.append(value)
    return series


def metric_summary(session: Session, *, job_id: str) -> dict[str, dict[str, float]]:
    """Last, min and max of every metric: what a model page shows at a glance."""
    summary: dict[str, dict[str, float]] = {}
    for name, (steps, values) in metric_series(session, job_id=job_id).items():
        summary[name] = {
            "last": values[-1],
            "min": min(values),
            "max": max(values),
            "last_step": float(steps[-1]),
        }
    return summary


def eta_seconds(job: Job, now: datetime | None = None) -> float | None:
    if job.status != RUNNING or not job.progress_total or job.attempt_started_at is None:
        return None
    done = job.progress_step - job.attempt_start_step
    if done <= 0:
        return None
    elapsed = ((now or utcnow()) - job.attempt_started_at).total_seconds()
    return max(0.0, elapsed / done * (job.progress_total - job.progress_step))


# -- heavy queries -------------------------------------------------------------------------------
LIVE = (QUEUED, RUNNING)


def reusable_query(session: Session, *, cache_key: str) -> Job | None:
    """A query job with the same key that is still to run, running, or done and unexpired:
    its result can be shared instead of computing it again."""
    now = utcnow()
    return session.scalar(
        select(Job)
        .where(
            Job.kind == JobKind.query.value,
            Job.cache_key == cache_key,
            or_(
                Job.status.in_(LIVE),
                and_(Job.status == JobStatus.succeeded.value, Job.expires_at > now),
            ),
        )
        .order_by(Job.created_at.desc())
        .limit(1)
    )


def expired_queries(session: Session, *, limit: int = 100) -> Sequence[Job]:
    """Finished query jobs past their expiry: their rows and results can go."""
    return session.scalars(
        select(Job)
        .where(
            Job.kind == JobKind.query.value,
            Job.status.in_([s.value for s in JobStatus if s.finished]),
            or_(Job.expires_at < utcnow(), Job.expires_at.is_(None)),
            Job.finished_at < utcnow() - timedelta(minutes=1),
        )
        .limit(limit)
    ).all()


def delete_job(session: Session, *, job_id: str) -> None:
    session.execute(delete(Job).where(Job.id == job_id))


class JobActive(RuntimeError):
    """The job is queued or running: cancel it first."""


def remove(session: Session, *, job_id: str) -> list[str]:
    """Delete a finished job with its history (metric points, events, logs, dataset links,
    idempotency records); the model it made stays, no longer linked to it. Returns the URIs
    of its files (checkpoints) for the caller to delete after the commit."""
    job = get_job(session, job_id)
    if job.status in ACTIVE:
        raise JobActive(f"job {job_id} is {job.status}: cancel it first")
    uris = [job.checkpoint_uri] if job.checkpoint_uri else []
    for table in (MetricPoint, JobEvent, JobLog, JobDataset):
        session.execute(delete(table).where(table.job_id == job_id))
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.scope == "jobs", IdempotencyKey.resource_id == job_id
        )
    )
    session.execute(
        update(TrainedModelRow).where(TrainedModelRow.job_id == job_id).values(job_id=None)
    )
    session.execute(delete(Job).where(Job.id == job_id))
    return uris


RESUMABLE_CODES = ("timed_out",)


def resume(session: Session, *, job_id: str) -> Job:
    """Put a cancelled job (or one stopped by its time limit) back in the queue, to go on
    from its checkpoint; the caller sends its message. `InvalidTransition` if it has no
    checkpoint or ended otherwise."""
    job = get_job(session, job_id)
    resumable = or_(
        Job.status == JobStatus.cancelled.value,
        and_(Job.status == JobStatus.failed.value, Job.error_code.in_(RESUMABLE_CODES)),
    )
    done = _changed(
        session,
        update(Job)
        .where(Job.id == job_id, resumable, Job.checkpoint_uri.is_not(None))
        .values(
            status=QUEUED,
            cancel_requested=False,
            cancelled_by=None,
            error=None,
            error_code=None,
            finished_at=None,
            enqueued_at=None,
            max_runtime_seconds=None,
            webhook_status=None,
            webhook_attempts=0,
            webhook_next_at=None,
            webhook_last_error=None,
        ),
    )
    session.refresh(job)
    if not done:
        why = "it has no checkpoint" if job.checkpoint_uri is None else f"it is {job.status}"
        if job.status == JobStatus.failed.value and job.error_code not in RESUMABLE_CODES:
            why = f"it failed ({job.error_code}); resuming would fail again"
        raise InvalidTransition(f"job {job_id} cannot be resumed: {why}")
    events.record_status(session, job_id)
    return job
