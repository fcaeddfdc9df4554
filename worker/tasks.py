"""Celery tasks: thin wrappers that pass a job id to `worker.runner`.

Worker signals start the sweeper when the worker is ready and turn a shutdown request into
a cooperative stop of the running job (checkpoint, then back to the queue).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_ready, worker_shutting_down

from store.settings import get_settings
from worker.app import QUERY_TASK, TRAIN_TASK, app
from worker.hooks import SHUTDOWN
from worker.runner import run_job, worker_name
from worker.sweeper import Sweeper

log = logging.getLogger(__name__)


@app.task(name=TRAIN_TASK, acks_late=True, ignore_result=True)
def train_job(job_id: str) -> str:
    return run_job(job_id, get_settings(), worker=worker_name())


@app.task(name=QUERY_TASK, acks_late=True, ignore_result=True)
def query_job(job_id: str) -> str:
    return run_job(job_id, get_settings(), worker=worker_name())


_sweeper: Sweeper | None = None


@worker_ready.connect
def _start_sweeper(**_: Any) -> None:
    global _sweeper
    logging.basicConfig(level=get_settings().log_level)
    _sweeper = Sweeper(get_settings())
    _sweeper.start()


@worker_shutting_down.connect
def _on_shutdown(**_: Any) -> None:
    SHUTDOWN.set()
    if _sweeper is not None:
        _sweeper.stop()
