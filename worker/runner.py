"""Running one job: claim its lease, train through `ml`, record the outcome.

This is the body of the Celery task, kept free of Celery so it can be called directly in
tests. It is idempotent: a message for a finished, cancelled or live-leased job does nothing.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import traceback
from typing import Any

import torch
from sqlalchemy.orm import Session, sessionmaker

import ml
from ml.core.errors import MLError, TrainingStopped
from store import jobs
from store.artifacts import ArtifactStore, open_artifact_store
from store.db import session_factory, session_scope
from store.models import Job, JobStatus
from store.settings import Settings
from worker.enqueue import enqueue_job
from worker.hooks import SHUTDOWN, JobHooks

log = logging.getLogger(__name__)

Factory = sessionmaker[Session]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(job_id: str, settings: Settings, *, worker: str | None = None) -> str:
    """Run the job if this worker can claim it; return what happened, for logs and tests."""
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    factory = session_factory(settings.resolved_database_url)
    artifacts = open_artifact_store(settings)
    if SHUTDOWN.is_set():
        return _pass_on(factory, job_id)
    with session_scope(factory) as session:
        claim = jobs.claim(
            session,
            job_id=job_id,
            worker=worker or worker_name(),
            lease_seconds=settings.lease_seconds,
        )
    if not claim.claimed:
        log.info("job %s not run: %s", job_id, claim.reason)
        return f"skipped: {claim.reason}"
    job = claim.job
    assert job is not None
    attempt = job.attempt
    log.info("job %s (%s) attempt %d started", job_id, job.algorithm, attempt)

    resume = _resume_state(factory, artifacts, job_id, attempt) if job.checkpoint_step else None
    hooks = JobHooks(
        factory=factory,
        artifacts=artifacts,
        job_id=job_id,
        attempt=attempt,
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
        flush_seconds=settings.metrics_flush_seconds,
    )
    try:
        with hooks:
            algorithm = ml.get_algorithm(job.algorithm)
            config = algorithm.config.model_validate(job.config)
            model = algorithm.run(
                config, seed=job.seed, hooks=hooks, device=settings.device, resume=resume
            )
            uri = artifacts.save_model(f"models/{job_id}.pt", model)
    except TrainingStopped as stop:
        return _stopped(factory, hooks, job_id, attempt, job.queue, stop.step)
    except MLError as exc:
        return _finish(factory, job_id, attempt, JobStatus.failed, error=exc.message)
    except Exception as exc:  # a bug or a resource error: record it, keep the worker alive
        log.exception("job %s failed", job_id)
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return _finish(
            factory, job_id, attempt, JobStatus.failed, error=f"internal error: {detail}"
        )
    finally:
        _free_memory()

    outcome = _finish(
        factory,
        job_id,
        attempt,
        JobStatus.succeeded,
        artifact_path=uri,
        model_metadata=model.metadata,
    )
    artifacts.delete_checkpoint(job_id)
    return outcome


def _pass_on(factory: Factory, job_id: str) -> str:
    """A message that arrives while the worker shuts down goes back to the broker unrun (its
    own message is acknowledged when the task returns)."""
    with session_scope(factory) as session:
        job = session.get(Job, job_id)
        queue = job.queue if job is not None and job.status == JobStatus.queued else None
    if queue is not None:
        enqueue_job(job_id, queue)
    return "passed on: worker shutting down"


def _resume_state(
    factory: Factory, artifacts: ArtifactStore, job_id: str, attempt: int
) -> dict[str, Any] | None:
    try:
        state = artifacts.load_checkpoint(job_id)
    except MLError:
        log.exception("job %s: checkpoint unreadable, starting over", job_id)
        return None
    if state is None:
        return None
    step = int(state.get("step", 0))
    with session_scope(factory) as session:
        jobs.start_resume(session, job_id=job_id, attempt=attempt, step=step)
    log.info("job %s: resuming from step %d", job_id, step)
    return state


def _stopped(
    factory: Factory, hooks: JobHooks, job_id: str, attempt: int, queue: str, step: int
) -> str:
    if hooks.lease_lost:
        return "abandoned: lease lost"
    if hooks.cancel_requested:
        return _finish(factory, job_id, attempt, JobStatus.cancelled)
    if SHUTDOWN.is_set():
        with session_scope(factory) as session:
            released = jobs.release(session, job_id=job_id, attempt=attempt)
        if released:
            enqueue_job(job_id, queue)
        log.info("job %s: worker shutting down, released at step %d", job_id, step)
        return "released"
    return _finish(factory, job_id, attempt, JobStatus.cancelled)


def _finish(factory: Factory, job_id: str, attempt: int, status: JobStatus, **values: Any) -> str:
    with session_scope(factory) as session:
        done = jobs.finish(session, job_id=job_id, attempt=attempt, status=status, **values)
    log.info(
        "job %s attempt %d -> %s%s",
        job_id,
        attempt,
        status.value,
        "" if done else " (lease lost, not recorded)",
    )
    return status.value if done else "abandoned: lease lost"


def _free_memory() -> None:
    """Long-lived GPU workers hand memory back between jobs."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
