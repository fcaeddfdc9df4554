"""What a job's event stream says: its status changes, progress, metric points and warnings,
read in order from a cursor so a client that reconnects (`Last-Event-ID`) misses nothing.

Status changes and warnings are rows of `job_events`, written by `store.jobs` in the
transaction of the transition; metric points are read straight from `metrics`; progress is
the job row's, sent when it moves. The cursor is the last event id and the last metric point
id the client saw, shown to it as `"<event>.<point>"`. Both id sequences grow in commit order
within one job (every insert follows the job's row lock), so reading "after the cursor"
never skips a row committed later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.tables import Job, JobEvent, MetricPoint, utcnow

STATUS = "status"
WARNING = "warning"
POINTS_PER_READ = 5_000  # a long history goes out in several reads, never one huge one


@dataclass(frozen=True)
class Cursor:
    """Where a client is in a job's stream: the last event id and metric point id it saw."""

    event: int = 0
    point: int = 0

    def __str__(self) -> str:
        return f"{self.event}.{self.point}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        """The cursor a `Last-Event-ID` names; the stream's start for none. Raises
        ValueError for text that is not one of ours."""
        if not text:
            return cls()
        event, _, point = text.strip().partition(".")
        values = int(event), int(point or 0)
        if min(values) < 0:
            raise ValueError("negative id")
        return cls(*values)


def status_data(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "status": job.status,
        "attempt": job.attempt,
        "worker": job.worker,
        "error": job.error,
        "error_code": job.error_code,
        "at": utcnow().isoformat(),
    }


def record_status(session: Session, job_id: str) -> None:
    """Record the job's status as it now is (after a transition's UPDATE in this
    transaction, which holds the row's lock)."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is not None:
        session.add(JobEvent(job_id=job_id, kind=STATUS, data=status_data(job)))
        session.flush()


def record_warnings(session: Session, job_id: str, warnings: list[dict[str, Any]]) -> None:
    for warning in warnings:
        session.add(JobEvent(job_id=job_id, kind=WARNING, data=dict(warning)))
    session.flush()


@dataclass(frozen=True)
class Event:
    """One server-sent event: its `event:` name, `data:` and `id:` (the cursor after it)."""

    kind: str
    data: dict[str, Any]
    cursor: Cursor


def read(session: Session, job_id: str, after: Cursor) -> list[Event]:
    """The job's recorded events and metric points after `after`, in order: events first,
    then the points (one `metrics` event per read), each carrying the cursor past it."""
    rows = session.scalars(
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.id > after.event)
        .order_by(JobEvent.id)
        .limit(POINTS_PER_READ)
    ).all()
    out: list[Event] = []
    event_id = after.event
    for row in rows:
        event_id = row.id
        out.append(Event(row.kind, row.data, Cursor(event_id, after.point)))
    points = session.execute(
        select(MetricPoint.id, MetricPoint.name, MetricPoint.step, MetricPoint.value)
        .where(MetricPoint.job_id == job_id, MetricPoint.id > after.point)
        .order_by(MetricPoint.id)
        .limit(POINTS_PER_READ)
    ).all()
    if points:
        data = {"points": [{"name": p.name, "step": p.step, "value": p.value} for p in points]}
        out.append(Event("metrics", data, Cursor(event_id, points[-1].id)))
    return out
