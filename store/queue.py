"""Where a queued job stands: its place in its queue and when it will likely start.

Workers take a queue's jobs in about the order they were submitted, one at a time each, so
the estimate plays the queue forward: every running job frees its worker at its ETA (or, for
one that has not reported progress yet, at its algorithm's typical duration), and each job
ahead then holds a worker for its algorithm's typical duration (the median of recent
successful runs on that queue). An idle worker that serves the queue (`store.workers`: its
sweeper's beats) takes the head of the queue at once. With no worker seen on the queue the
wait is unknown (none may be up at all) and said to be.
"""

from __future__ import annotations

import heapq
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.jobs import eta_seconds
from store.settings import get_settings
from store.tables import Job, JobStatus, utcnow
from store.workers import live_per_queue

HISTORY = timedelta(days=7)  # durations older than this say little about today's workers
MAX_AHEAD = 10_000  # jobs read from a queue's head; later ones get no estimate
MAX_DURATIONS = 500


@dataclass(frozen=True)
class Wait:
    position: int  # 1: the next job a free worker takes
    seconds: float | None  # estimated time until it starts; None when unknown


def waits(
    session: Session,
    queued: Sequence[Job],
    now: datetime | None = None,
    sweep_seconds: float | None = None,
) -> dict[str, Wait]:
    """The wait of each queued job in `queued` (others are left out), by job id."""
    now = now or utcnow()
    mine = [job for job in queued if job.status == JobStatus.queued.value]
    if not mine:
        return {}
    sweep = get_settings().sweep_seconds if sweep_seconds is None else sweep_seconds
    live = live_per_queue(session, sweep_seconds=sweep, now=now)
    out: dict[str, Wait] = {}
    for queue in {job.queue for job in mine}:
        wanted = {job.id for job in mine if job.queue == queue}
        out |= _queue_waits(session, queue, wanted, now, live[queue])
    return out


def _queue_waits(
    session: Session, queue: str, wanted: set[str], now: datetime, workers: int
) -> dict[str, Wait]:
    line = session.execute(
        select(Job.id, Job.algorithm)
        .where(Job.queue == queue, Job.status == JobStatus.queued.value)
        .order_by(Job.created_at, Job.id)
        .limit(MAX_AHEAD)
    ).all()
    running = session.scalars(
        select(Job).where(Job.queue == queue, Job.status == JobStatus.running.value)
    ).all()
    typical = typical_durations(session, queue, now)
    busy: list[float | None] = [_remaining(job, typical, now) for job in running]
    idle: list[float | None] = [0.0] * max(workers - len(running), 0)  # free: takes one now
    starts = play_forward(
        busy + idle, [typical.get(algorithm, typical.get("")) for _, algorithm in line]
    )
    return {
        job_id: Wait(position=i + 1, seconds=starts[i])
        for i, (job_id, _) in enumerate(line)
        if job_id in wanted
    }


def typical_durations(session: Session, queue: str, now: datetime) -> dict[str, float]:
    """Median seconds of recent successful runs on the queue, by algorithm, and under ""
    for the queue as a whole (the guess for an algorithm never run lately)."""
    rows = session.execute(
        select(Job.algorithm, Job.started_at, Job.finished_at)
        .where(
            Job.queue == queue,
            Job.status == JobStatus.succeeded.value,
            Job.finished_at > now - HISTORY,
            Job.started_at.is_not(None),
        )
        .order_by(Job.finished_at.desc())
        .limit(MAX_DURATIONS)
    ).all()
    by_algorithm: dict[str, list[float]] = defaultdict(list)
    for algorithm, started, finished in rows:
        if started is None or finished is None:
            continue
        seconds = (finished - started).total_seconds()
        by_algorithm[algorithm].append(seconds)
        by_algorithm[""].append(seconds)
    return {name: statistics.median(values) for name, values in by_algorithm.items()}


def _remaining(job: Job, typical: dict[str, float], now: datetime) -> float | None:
    eta = eta_seconds(job, now)
    if eta is not None:
        return eta
    duration = typical.get(job.algorithm, typical.get(""))
    if duration is None or job.started_at is None:
        return None
    return max(duration - (now - job.started_at).total_seconds(), 0.0)


def play_forward(
    running: Sequence[float | None], durations: Sequence[float | None]
) -> list[float | None]:
    """When each job of the queue starts, in seconds from now, given when each busy worker
    frees up (`running`; None: unknown) and how long each job ahead will take (None:
    unknown). A worker busy for an unknown time takes no further job in the play, so once
    every worker is, every later start is unknown."""
    free = [t for t in running if t is not None]
    heapq.heapify(free)
    starts: list[float | None] = []
    for duration in durations:
        if not free:
            starts.append(None)
            continue
        start = heapq.heappop(free)
        starts.append(start)
        if duration is not None:
            heapq.heappush(free, start + duration)
    return starts
