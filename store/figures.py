"""The service's figures for monitoring, read from the database at the moment they are asked
for (`GET /metrics`): jobs by status and algorithm, queue depths, the workers running a job
and their heartbeats, and how long recent jobs took. The database is the source of truth, so
every API process reports the same numbers, whichever answered the scrape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.tables import Job, JobKind, JobStatus
from store.workers import live_per_queue

RECENT = timedelta(hours=24)  # the window of `durations`
MAX_RECENT = 10_000  # finished jobs read for `durations`, newest first


@dataclass(frozen=True)
class Figures:
    jobs: dict[tuple[str, str], int]  # (status, algorithm) -> training jobs
    queued: dict[str, int]  # queue -> jobs waiting (training and heavy queries)
    heartbeats: dict[str, float]  # worker -> seconds since its running job's last heartbeat
    durations: dict[str, list[float]]  # algorithm -> seconds of training jobs finished lately
    workers_up: dict[str, int]  # queue -> workers that are up and serve it (busy or idle)


def figures(session: Session, now: datetime, sweep_seconds: float = 15.0) -> Figures:
    jobs = {
        (status, algorithm): count
        for status, algorithm, count in session.execute(
            select(Job.status, Job.algorithm, func.count())
            .where(Job.kind == JobKind.train.value)
            .group_by(Job.status, Job.algorithm)
        )
    }
    queued = {
        queue: count
        for queue, count in session.execute(
            select(Job.queue, func.count())
            .where(Job.status == JobStatus.queued.value)
            .group_by(Job.queue)
        )
    }
    heartbeats = {
        worker: max(0.0, (now - beat).total_seconds())
        for worker, beat in session.execute(
            select(Job.worker, func.max(Job.heartbeat_at))
            .where(Job.status == JobStatus.running.value, Job.worker.is_not(None))
            .group_by(Job.worker)
        )
        if worker is not None and beat is not None
    }
    durations: dict[str, list[float]] = {}
    finished = session.execute(
        select(Job.algorithm, Job.started_at, Job.finished_at)
        .where(
            Job.kind == JobKind.train.value,
            Job.finished_at >= now - RECENT,
            Job.started_at.is_not(None),
        )
        .order_by(Job.finished_at.desc())
        .limit(MAX_RECENT)
    )
    for algorithm, started, ended in finished:
        if started is not None and ended is not None:
            durations.setdefault(algorithm, []).append((ended - started).total_seconds())
    workers_up = dict(live_per_queue(session, sweep_seconds=sweep_seconds, now=now))
    return Figures(
        jobs=jobs,
        queued=queued,
        heartbeats=heartbeats,
        durations=durations,
        workers_up=workers_up,
    )
