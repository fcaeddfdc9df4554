"""Finding jobs that lost their broker message or their worker, and sending them again.

Every worker runs a sweeper thread. A job whose lease expired (its worker was killed) goes
back to the queue and resumes from its checkpoint; a job the API could not enqueue (broker
down) is sent now. Claims are atomic, so two sweepers sending the same job is harmless.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path

from store import jobs
from store.db import session_factory, session_scope
from store.settings import Settings

log = logging.getLogger(__name__)

# Touched on every sweep: the container health check reads its age. A Celery ping cannot be
# used, because a solo-pool worker answers no control message while it trains.
ALIVE_FILE = Path(tempfile.gettempdir()) / "crucible-worker.alive"


def sweep_once(settings: Settings) -> list[str]:
    from worker.enqueue import enqueue_job

    with session_scope(session_factory(settings.resolved_database_url)) as session:
        orphans = jobs.requeue_orphans(session, max_attempts=settings.max_attempts)
    for orphan in orphans:
        log.warning("re-enqueueing orphaned job %s on %s", orphan.job_id, orphan.queue)
        enqueue_job(orphan.job_id, orphan.queue)
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
