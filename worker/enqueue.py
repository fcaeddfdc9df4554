"""Sending "run job X" to the broker: the only thing the API imports from `worker`."""

from __future__ import annotations

import logging

from store.settings import Settings, get_settings
from worker.app import QUERY_QUEUE, QUERY_TASK, TRAIN_TASK, celery_for

__all__ = ["QUERY_QUEUE", "enqueue_job"]

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
