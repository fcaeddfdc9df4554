"""Celery tasks: thin wrappers that pass a job id to `worker.runner`.

Worker signals start the sweeper when the worker is ready and turn a shutdown request into
a cooperative stop of the running job (checkpoint, then back to the queue). A message whose
job cannot be looked up (database down) is rejected back to the broker, never dropped.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.exceptions import Reject
from celery.signals import worker_ready, worker_shutting_down

from store.settings import get_settings
from worker import metrics
from worker.app import QUERY_TASK, TRAIN_TASK, app
from worker.hooks import SHUTDOWN
from worker.runner import MessageNotHandled, run_job, worker_name
from worker.sweeper import Sweeper

log = logging.getLogger(__name__)


# How long a worker waits before it hands back a message it could not match with its job
# (the database is unreachable): the broker gives it straight back to this worker.
REQUEUE_DELAY_SECONDS = 1.0


@app.task(name=TRAIN_TASK, acks_late=True, ignore_result=True)
def train_job(job_id: str) -> str:
    return metrics.observed("train", lambda: _run(job_id))


@app.task(name=QUERY_TASK, acks_late=True, ignore_result=True)
def query_job(job_id: str) -> str:
    return metrics.observed("query", lambda: _run(job_id))


def _run(job_id: str) -> str:
    """Run the job; a message that meets an unreachable database goes back to the broker
    (rejected and requeued, not acknowledged: a task that raises would be acknowledged and
    its message lost)."""
    try:
        return run_job(job_id, get_settings(), worker=worker_name())
    except MessageNotHandled as exc:
        log.warning("%s: message returned to the broker", exc)
        time.sleep(REQUEUE_DELAY_SECONDS)
        raise Reject(str(exc), requeue=True) from None  # the line above says why


_sweeper: Sweeper | None = None


@worker_ready.connect
def _start_sweeper(sender: Any = None, **_: Any) -> None:
    global _sweeper
    metrics.serve(get_settings().worker_metrics_port)
    _sweeper = Sweeper(get_settings(), name=worker_name(), queues=served_queues(sender))
    _sweeper.start()


def served_queues(consumer: Any) -> list[str]:
    """The queues this worker takes jobs from (`--queues`), from its Celery consumer."""
    try:
        return sorted(queue.name for queue in consumer.task_consumer.queues)
    except AttributeError:  # no consumer to ask: the worker is not known to serve any
        log.warning("the queues this worker serves are unknown")
        return []


@worker_shutting_down.connect
def _on_shutdown(**_: Any) -> None:
    SHUTDOWN.set()
    if _sweeper is not None:
        _sweeper.stop()
