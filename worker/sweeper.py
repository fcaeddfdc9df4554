"""Finding jobs that lost their broker message or their worker, and sending them again.

Every worker runs a sweeper thread. A job whose lease expired (its worker was killed) goes
back to the queue and resumes from its checkpoint; a job the API could not enqueue (broker
down) is sent now; expired results of heavy queries are deleted. Claims are atomic, so two
sweepers sending the same job is harmless.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect, text

from store import jobs
from store.artifacts import open_artifact_store
from store.db import session_factory, session_scope
from store.settings import Settings
from worker.enqueue import enqueue_job
from worker.queries import drop_expired_results

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


def sweep_once(settings: Settings) -> list[str]:
    factory = session_factory(settings.resolved_database_url)
    with session_scope(factory) as session:
        orphans = jobs.requeue_orphans(session, max_attempts=settings.max_attempts)
    for orphan in orphans:
        log.warning("re-enqueueing orphaned job %s on %s", orphan.job_id, orphan.queue)
        enqueue_job(orphan.job_id, orphan.queue, settings)
    drop_expired_results(factory, open_artifact_store(settings))
    prune_embedded_broker(settings.resolved_broker_url)
    return [o.job_id for o in orphans]


class Sweeper(threading.Thread):
    def __init__(self, settings: Settings) -> None:
        super().__init__(name="crucible-sweeper", daemon=True)
        self._settings = settings
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            try:
                sweep_once(self._settings)
            except Exception:  # the database may be briefly unreachable; try again later
                log.exception("sweep failed")
            else:
                ALIVE_FILE.touch()
            if self._stop_event.wait(self._settings.sweep_seconds):
                return

    def stop(self) -> None:
        self._stop_event.set()
