"""Which workers are up: beats, a clean leave, and beats too old to count."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from store import workers
from store.db import session_scope
from store.tables import WorkerRow, utcnow
from tests.store.test_jobs import factory  # noqa: F401 (the fixture: SQLite and PostgreSQL)


def test_workers_are_counted_per_queue_while_their_beats_are_recent(
    factory: sessionmaker[Session],  # noqa: F811
) -> None:
    now = utcnow()
    with session_scope(factory) as s:
        workers.beat(s, name="train@a:1", queues=["gpu", "cpu"], now=now)
        workers.beat(s, name="train@b:2", queues=["cpu"], now=now)
        workers.beat(s, name="queries@a:3", queues=["queries"], now=now - timedelta(seconds=50))
    with session_scope(factory) as s:
        live = workers.live_per_queue(s, sweep_seconds=15, now=now)
        # three sweeps (45 s) without a beat: the query worker is not counted
        assert dict(live) == {"cpu": 2, "gpu": 1}
        workers.beat(s, name="train@a:1", queues=["cpu"], now=now)  # restarted, fewer queues
        workers.gone(s, name="train@b:2")  # a clean shutdown
    with session_scope(factory) as s:
        assert dict(workers.live_per_queue(s, sweep_seconds=15, now=now)) == {"cpu": 1}
        workers.beat(s, name="train@c:4", queues=["cpu"], now=now + timedelta(days=2))
    with session_scope(factory) as s:  # a day without a beat: forgotten
        assert s.get(WorkerRow, "train@a:1") is None
        assert s.get(WorkerRow, "train@c:4") is not None
