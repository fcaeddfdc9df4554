"""Finding jobs that lost their broker message or their worker, and sending them again.

Every worker runs a sweeper thread. A job whose lease expired (its worker was killed) goes
back to the queue and resumes from its checkpoint; a job the API could not enqueue (broker
down), or queued for longer than `QUEUED_RESEND_SECONDS` (its message lost: a broker
restarted without persistence), is sent now; expired results of heavy queries are deleted,
retention (`store.retention`) keeps checkpoints, idempotency keys and metric points from
growing without bound, and due webhooks are called (`worker.webhooks`: retries, and jobs that
ended without a worker, such as one cancelled while queued). Claims are atomic, so two
sweepers sending the same job is harmless.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from store import jobs, workers
from store.artifacts import open_artifact_store
from store.db import database_unreachable, session_factory, session_scope
from store.retention import apply_retention
from store.settings import Settings
from worker.enqueue import enqueue_job
from worker.queries import drop_expired_results
from worker.webhooks import deliver_due

log = logging.getLogger(__name__)

# Touched on every sweep: the container health check reads its age. A Celery ping cannot be
# used, because a solo-pool worker answers no control message while it trains.
ALIVE_FILE = Path(tempfile.gettempdir()) / "crucible-worker.alive"


def prune_embedded_broker(broker_url: str) -> int:
    """Delete messages kombu's SQLAlchemy transport has delivered; it only marks them
    invisible, so the embedded broker's file would grow with every job. A delivered message
    is never read again (an unacknowledged one is re-sent as a new row), so this is safe."""
    if not broker_url.startswith("sqla+"):
        return 0
    with _broker_engine(broker_url.removeprefix("sqla+")).begin() as conn:
        if not inspect(conn).has_table("kombu_message"):
            return 0
        deleted = conn.execute(text("DELETE FROM kombu_message WHERE visible = :no"), {"no": False})
        return int(deleted.rowcount)


@lru_cache(maxsize=4)
def _broker_engine(url: str) -> Engine:
    """One engine per broker URL for the life of the worker, not one per sweep."""
    return create_engine(url, connect_args={"timeout": 30})


class _Outage:
    """When this process's sweeper last failed to reach the database. For a lease after
    that, expired leases are not reclaimed: their holders could not renew them either."""

    last_failure: float | None = None

    @classmethod
    def recent(cls, settings: Settings) -> bool:
        last = cls.last_failure
        return last is not None and time.monotonic() - last < settings.lease_seconds


def requeue(settings: Settings, factory: sessionmaker[Session]) -> list[jobs.Orphan]:
    """Send every job the database says needs a message (lost worker, failed send, message
    lost by the broker); record each send only once it succeeded. The broker being down
    stops the round: the rest stay unsent and the next sweep tries again."""
    try:
        with session_scope(factory) as session:
            orphans = jobs.requeue_orphans(
                session,
                max_attempts=settings.max_attempts,
                resend_after_seconds=settings.queued_resend_seconds,
                reclaim_expired=not _Outage.recent(settings),
            )
    except Exception:
        _Outage.last_failure = time.monotonic()
        raise
    sent: list[jobs.Orphan] = []
    for orphan in orphans:
        log.warning("sending %s job %s to %s", orphan.reason, orphan.job_id, orphan.queue)
        if not enqueue_job(orphan.job_id, orphan.queue, settings):
            break
        sent.append(orphan)
    if sent:
        with session_scope(factory) as session:
            for orphan in sent:
                jobs.mark_enqueued(session, job_id=orphan.job_id)
    return orphans


def sweep_once(settings: Settings) -> list[str]:
    factory = session_factory(settings.resolved_database_url)
    orphans = requeue(settings, factory)
    drop_expired_results(factory, open_artifact_store(settings))
    prune_embedded_broker(settings.resolved_broker_url)
    apply_retention(settings)
    deliver_due(settings)
    return [o.job_id for o in orphans]


class Sweeper(threading.Thread):
    """Sweeps every SWEEP_SECONDS, and first says the worker (`name`, serving `queues`) is up
    (`store.workers`); at a clean stop it says the worker is gone."""

    def __init__(
        self, settings: Settings, *, name: str | None = None, queues: Iterable[str] = ()
    ) -> None:
        super().__init__(name="crucible-sweeper", daemon=True)
        self._settings = settings
        self._stop_event = threading.Event()
        self.worker = name
        self.queues = sorted(queues)

    def run(self) -> None:
        while True:
            try:
                sweep_once(self._settings)
            except Exception:  # the database may be briefly unreachable; try again later
                log.exception("sweep failed")
            else:
                ALIVE_FILE.touch()
            self.beat()
            if self._stop_event.wait(self._settings.sweep_seconds):
                self.leave()
                return

    def beat(self) -> None:
        """Say the worker is up. After the sweep and apart from it: a beat that fails must
        not keep the sweep from running (whose failure starts the wait of one lease before
        expired leases are reclaimed, see `_Outage`), and it counts as an outage too."""
        if self.worker is None:
            return
        try:
            with session_scope(session_factory(self._settings.resolved_database_url)) as session:
                workers.beat(session, name=self.worker, queues=self.queues)
        except Exception as exc:
            if database_unreachable(exc):
                _Outage.last_failure = time.monotonic()
            log.warning("worker %s: could not say it is up: %s", self.worker, exc)

    def leave(self) -> None:
        if self.worker is None:
            return
        try:
            with session_scope(session_factory(self._settings.resolved_database_url)) as session:
                workers.gone(session, name=self.worker)
        except Exception:  # it will be forgotten once its beats are old
            log.warning("worker %s: could not record its shutdown", self.worker, exc_info=True)

    def stop(self) -> None:
        self._stop_event.set()
