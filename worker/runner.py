"""Running one job: claim its lease, train through `ml`, record the outcome.

This is the body of the Celery task, kept free of Celery so it can be called directly in
tests. It is idempotent: a message for a finished, cancelled or live-leased job does nothing.
A succeeded training job's model is written to the artifact store first, then its `models`
row (and its registered name, if the job asked for one) is created in the same transaction
that marks the job succeeded, so a model row never points at a missing file and a worker
that lost its lease creates no model. Heavy queries are jobs too (`worker.queries`).
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import socket
import traceback
from functools import partial
from typing import Any

import torch
from sqlalchemy.orm import Session, sessionmaker

import ml
from ml.core.errors import ArtifactError, MLError, TrainingAborted, TrainingStopped
from ml.core.model import TrainedModel
from ml.data import Dataset, from_npz
from store import datasets, jobs, models, registry
from store.artifacts import ArtifactStore, ArtifactUnavailable, open_artifact_store
from store.db import session_factory, session_scope
from store.settings import Settings
from store.tables import Job, JobKind, JobStatus
from worker.enqueue import enqueue_job
from worker.hooks import SHUTDOWN, JobHooks
from worker.queries import run_query

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
        return _pass_on(factory, job_id, settings)
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
    log.info("job %s (%s %s) attempt %d started", job_id, job.kind, job.algorithm, job.attempt)
    hooks = JobHooks(
        factory=factory,
        artifacts=artifacts,
        job_id=job_id,
        attempt=job.attempt,
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
        flush_seconds=settings.metrics_flush_seconds,
    )
    if job.kind == JobKind.query:
        return run_query(job, hooks, factory, artifacts, settings)
    return _train(job, hooks, factory, artifacts, settings)


def _train(
    job: Job, hooks: JobHooks, factory: Factory, artifacts: ArtifactStore, settings: Settings
) -> str:
    job_id, attempt = job.id, job.attempt
    try:
        with hooks:
            model = _fit(job, hooks, factory, artifacts, settings)
            model_id = models.new_model_id()
            data = model.to_bytes()
            uri = artifacts.put(f"models/{model_id}.pt", data)
    except TrainingStopped as stop:
        return _stopped(factory, hooks, job, stop.step, settings)
    except (TrainingAborted, MLError) as exc:  # the run cannot succeed; say why
        return _finish(
            factory, job_id, attempt, JobStatus.failed, error=exc.message, error_code=exc.code
        )
    except Exception as exc:  # a bug or a resource error: record it, keep the worker alive
        log.exception("job %s failed", job_id)
        return _finish(
            factory,
            job_id,
            attempt,
            JobStatus.failed,
            error=f"internal error: {describe(exc)}",
            error_code="internal_error",
        )
    finally:
        _free_memory()

    outcome = _succeed(factory, job, model, model_id=model_id, uri=uri, data=data)
    if outcome == JobStatus.succeeded.value:
        artifacts.delete_checkpoint(job_id)
    else:
        artifacts.delete(uri)  # another worker owns the job now
    return outcome


def _fit(
    job: Job, hooks: JobHooks, factory: Factory, artifacts: ArtifactStore, settings: Settings
) -> TrainedModel:
    """Train, resuming from the job's checkpoint if it has one. A checkpoint this version of
    `ml` cannot use (written before an upgrade changed its format) is not the job's fault: the
    run starts over, with a warning on the job."""
    algorithm = ml.get_algorithm(job.algorithm)
    config = algorithm.config.model_validate(job.config)
    data = _datasets(factory, artifacts, job.id)
    resume = _resume_state(factory, artifacts, job.id, job.attempt) if job.checkpoint_step else None
    run = partial(
        algorithm.run, config, seed=job.seed, hooks=hooks, device=settings.device, datasets=data
    )
    try:
        return run(resume=resume)
    except ArtifactError as exc:
        if resume is None or isinstance(exc, ArtifactUnavailable):
            raise
        step = int(resume.get("step", 0))
        hooks.on_warning(step, "checkpoint_discarded", f"{exc.message}; training starts over")
        with session_scope(factory) as session:
            jobs.start_resume(session, job_id=job.id, attempt=job.attempt, step=0)
        return run(resume=None)


def describe(exc: BaseException) -> str:
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


def _datasets(factory: Factory, artifacts: ArtifactStore, job_id: str) -> dict[str, Dataset]:
    """The uploaded datasets the job's config names, validated arrays by id."""
    with session_scope(factory) as session:
        rows = [
            (d.id, d.kind, d.artifact_uri) for d in datasets.datasets_of_job(session, job_id=job_id)
        ]
    return {dataset_id: from_npz(kind, artifacts.get(uri)) for dataset_id, kind, uri in rows}


def _succeed(
    factory: Factory, job: Job, model: TrainedModel, *, model_id: str, uri: str, data: bytes
) -> str:
    """Mark the job succeeded and create its model (and registration) in one transaction."""
    with session_scope(factory) as session:
        done = jobs.finish(session, job_id=job.id, attempt=job.attempt, status=JobStatus.succeeded)
        if done:
            models.create_model(
                session,
                model_id=model_id,
                job_id=job.id,
                kind=model.kind,
                algorithm=job.algorithm,
                metadata=model.metadata,
                artifact_uri=uri,
                size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            if job.register_as:
                _register(session, job.register_as, model_id)
    log.info("job %s attempt %d -> %s", job.id, job.attempt, "succeeded" if done else "abandoned")
    return JobStatus.succeeded.value if done else "abandoned: lease lost"


def _register(session: Session, spec: dict[str, Any], model_id: str) -> None:
    entry = registry.register_version(session, name=spec["name"], model_id=model_id)
    for alias in spec.get("aliases", []):
        registry.set_alias(session, name=entry.name, alias=alias, version=entry.version)


def _pass_on(factory: Factory, job_id: str, settings: Settings) -> str:
    """A message that arrives while the worker shuts down goes back to the broker unrun (its
    own message is acknowledged when the task returns)."""
    with session_scope(factory) as session:
        job = session.get(Job, job_id)
        queue = job.queue if job is not None and job.status == JobStatus.queued else None
    if queue is not None:
        enqueue_job(job_id, queue, settings)
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


def _stopped(factory: Factory, hooks: JobHooks, job: Job, step: int, settings: Settings) -> str:
    if hooks.lease_lost:
        return "abandoned: lease lost"
    if hooks.cancel_requested:
        return _finish(factory, job.id, job.attempt, JobStatus.cancelled)
    if SHUTDOWN.is_set():
        with session_scope(factory) as session:
            released = jobs.release(session, job_id=job.id, attempt=job.attempt)
        if released:
            enqueue_job(job.id, job.queue, settings)
        log.info("job %s: worker shutting down, released at step %d", job.id, step)
        return "released"
    return _finish(factory, job.id, job.attempt, JobStatus.cancelled)


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
