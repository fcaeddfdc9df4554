"""Sending "run job X" to the broker: the only thing the API imports from `worker`.

`send` is what every caller wants: the message, then the record that it was sent. A job whose
send (or its record) failed stays "unsent" in the database, and a worker's sweeper sends it.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from store import jobs
from store.settings import Settings, get_settings
from worker.app import QUERY_QUEUE, QUERY_TASK, TRAIN_TASK, celery_for

__all__ = ["QUERY_QUEUE", "enqueue_job", "send"]

log = logging.getLogger(__name__)


def enqueue_job(job_id: str, queue: str, settings: Settings | None = None) -> bool:
    """Send the job's id to its queue; False if the broker is unreachable (the job stays
    queued in the database and a worker's sweeper sends it later)."""
    app = celery_for(settings or get_settings())
    try:
        app.send_task(
            QUERY_TASK if queue == QUERY_QUEUE else TRAIN_TASK,
            args=[job_id],
            queue=queue,
            retry=True,
            retry_policy={
                "max_retries": 2,
                "interval_start": 0.2,
                "interval_step": 0.5,
                "interval_max": 1.0,
            },
        )
    except Exception:  # broker down: not the client's problem, nothing lost
        log.exception("could not enqueue job %s on %s", job_id, queue)
        return False
    return True


def send(session: Session, job_id: str, queue: str, settings: Settings) -> bool:
    """Send a committed job's message and, once the broker took it, record the send
    (committed). Never raises: whatever fails leaves the job to the sweeper, and a duplicate
    message is harmless (claims are idempotent)."""
    if not enqueue_job(job_id, queue, settings):
        return False
    try:
        jobs.mark_enqueued(session, job_id=job_id)
        session.commit()
    except Exception:
        log.warning("job %s: sent, but the send was not recorded", job_id, exc_info=True)
        session.rollback()
        return False
    return True
