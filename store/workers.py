"""Which workers are up and which queues they serve: each worker's sweeper records itself
every SWEEP_SECONDS (`beat`) and removes itself at a clean shutdown (`gone`); a worker killed
outright just stops being seen, and is forgotten after a day.

A worker counts as up while its last beat is younger than `LIVE_SWEEPS` sweeps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from store.tables import WorkerRow, utcnow

LIVE_SWEEPS = 3  # beats a worker may miss (a slow sweep, a database hiccup) and still count
FORGET_AFTER = timedelta(days=1)


def beat(
    session: Session, *, name: str, queues: Iterable[str], now: datetime | None = None
) -> None:
    now = now or utcnow()
    row = session.get(WorkerRow, name)
    if row is None:
        session.add(WorkerRow(name=name, queues=sorted(queues), started_at=now, last_seen=now))
    else:
        row.queues, row.last_seen = sorted(queues), now
    session.execute(delete(WorkerRow).where(WorkerRow.last_seen < now - FORGET_AFTER))


def gone(session: Session, *, name: str) -> None:
    session.execute(delete(WorkerRow).where(WorkerRow.name == name))


def live_per_queue(
    session: Session, *, sweep_seconds: float, now: datetime | None = None
) -> Counter[str]:
    """How many workers that are up serve each queue."""
    now = now or utcnow()
    since = now - timedelta(seconds=LIVE_SWEEPS * sweep_seconds)
    counts: Counter[str] = Counter()
    for queues in session.scalars(select(WorkerRow.queues).where(WorkerRow.last_seen >= since)):
        counts.update(queues)
    return counts
