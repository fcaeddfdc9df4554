"""Running one job: claim its lease, train through `ml`, record the outcome.

This is the body of the Celery task, kept free of Celery so it can be called directly in
tests. It is idempotent: a message for a finished, cancelled or live-leased job does nothing.
A succeeded training job's model is written to the artifact store first (under a fresh model
id), then its `models` row (and its registered name, if the job asked for one) is created in
the same transaction that marks the job succeeded, so a model row never points at a missing
file and a worker that lost its lease creates no model (and deletes its file).

Database outages: a message whose job cannot be looked up raises `MessageNotHandled`, so the
task hands it back to the broker instead of acknowledging it; once the job is claimed, every
write waits out an outage for `patience` seconds (longer than a lease: the sweepers give
lease holders time to renew after an outage), and an outage longer than that leaves the job
to its lease: it expires and the job resumes elsewhere from its last checkpoint.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import socket
import time
from functools import partial
from typing import Any

import torch
from sqlalchemy.orm import Session, sessionmaker

import ml
from ml.core.errors import ArtifactError, MLError, TrainingAborted, TrainingStopped
from ml.core.model import TrainedModel, load_bytes
from ml.data import Dataset, from_npz
from store import datasets, jobs, models, registry
from store.artifacts import ArtifactStore, ArtifactUnavailable, open_artifact_store
from store.db import session_factory, session_scope
from store.settings import Settings
from store.tables import Job, JobKind, JobStatus, utcnow
from worker import webhooks
from worker.enqueue import send
from worker.hooks import (
    SHUTDOWN,
    DatabaseUnavailable,
    JobHooks,
    internal_failure,
    is_db_outage,
    outage_summary,
    patiently,
)
from worker.queries import run_query

log = logging.getLogger(__name__)

Factory = sessionmaker[Session]


class MessageNotHandled(RuntimeError):
    """The database could not be reached before the job was claimed: the message must go
    back to the broker, not be acknowledged and dropped."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def patience(settings: Settings) -> float:
    """How long a claimed job waits out a database outage before it leaves the job to its
    lease: several leases, so an outage longer than a lease is ridden out too."""
    return max(30.0, 3 * settings.lease_seconds)


def run_job(job_id: str, settings: Settings, *, worker: str | None = None) -> str:
    """Run the job if this worker can claim it; return what happened, for logs and tests."""
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    factory = session_factory(settings.resolved_database_url)
    artifacts = open_artifact_store(settings)
    try:
        if SHUTDOWN.is_set():
            return _pass_on(factory, job_id, settings)
        with session_scope(factory) as session:
            claim = jobs.claim(
                session,
                job_id=job_id,
                worker=worker or worker_name(),
                lease_seconds=settings.lease_seconds,
            )
    except Exception as exc:
        if is_db_outage(exc):
            message = f"job {job_id}: database unreachable ({outage_summary(exc)})"
            raise MessageNotHandled(message) from exc
        raise
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
        patience_seconds=patience(settings),
        deadline=_deadline(job),
        legacy_checkpoint=job.checkpoint_uri is None and job.checkpoint_step is not None,
        worker=job.worker,
        progress_log_seconds=settings.progress_log_seconds,
        tensorboard_dir=settings.tensorboard_dir,
    )
    if job.kind == JobKind.query:
        return run_query(job, hooks, factory, artifacts, settings)
    try:
        return _train(job, hooks, factory, artifacts, settings)
    finally:
        _call_webhook(job_id, settings)
        _free_memory()  # after the outcome is recorded: the client does not wait for it


def _call_webhook(job_id: str, settings: Settings) -> None:
    """Tell the job's webhook it ended, at once rather than at the next sweep. Best effort:
    a failed try is the sweeper's to retry, and nothing here may change the job's outcome."""
    try:
        webhooks.deliver(job_id, settings)
    except Exception:
        log.warning("job %s: webhook not tried now; the sweeper will", job_id, exc_info=True)


def _deadline(job: Job) -> float | None:
    """The job's wall-clock limit as a `time.monotonic()` deadline: counted from its first
    start, so a resumed job has what is left of it."""
    if job.max_runtime_seconds is None:
        return None
    started = job.started_at or utcnow()
    left = job.max_runtime_seconds - (utcnow() - started).total_seconds()
    return time.monotonic() + left


def _train(
    job: Job, hooks: JobHooks, factory: Factory, artifacts: ArtifactStore, settings: Settings
) -> str:
    job_id, attempt, wait = job.id, job.attempt, patience(settings)
    try:
        with hooks:
            model = _fit(job, hooks, factory, artifacts, settings)
            if hooks.lease_lost:
                return _abandoned(job)
            model_id = models.new_model_id()
            data = model.to_bytes()
            uri = artifacts.put(f"models/{model_id}.pt", data)
    except TrainingStopped as stop:
        return _stopped(factory, hooks, job, stop.step, settings)
    except ArtifactError as exc:  # the store's words name paths and hosts: for the log only
        log.error("job %s failed (reference %s/%d): %s", job_id, job_id, attempt, exc.message)
        failure = f"the run failed with {internal_failure(job_id, attempt)}"
        return _finish(factory, job, JobStatus.failed, wait, error=failure, error_code=exc.code)
    except (TrainingAborted, MLError) as exc:  # the run cannot succeed; say why (our words)
        return _finish(factory, job, JobStatus.failed, wait, error=exc.message, error_code=exc.code)
    except Exception as exc:
        if is_db_outage(exc):  # not the job's fault: its lease expires and it resumes
            log.error("job %s attempt %d: left to its lease: %s", job_id, attempt, exc)
            raise
        # A bug or a resource error: the traceback is for the log, never for the job's page.
        log.exception("job %s failed (reference %s/%d)", job_id, job_id, attempt)
        return _finish(
            factory,
            job,
            JobStatus.failed,
            wait,
            error=f"the run failed with {internal_failure(job_id, attempt)}",
            error_code="internal_error",
        )
    try:
        done = patiently(
            f"job {job_id}: recording success",
            partial(_succeed, factory, job, model, model_id=model_id, uri=uri, data=data),
            patience=wait,
        )
    except BaseException:
        artifacts.delete(uri)
        raise
    log.info("job %s attempt %d -> %s", job_id, attempt, "succeeded" if done else "abandoned")
    if not done:
        artifacts.delete(uri)  # another worker owns the job now
        return "abandoned: lease lost"
    if job.checkpoint_uri is None and job.checkpoint_step is not None:
        artifacts.delete_checkpoint(job_id)  # resumed from the key used before per-attempt files
    return JobStatus.succeeded.value


def _fit(
    job: Job, hooks: JobHooks, factory: Factory, artifacts: ArtifactStore, settings: Settings
) -> TrainedModel:
    """Train, resuming from the job's checkpoint if it has one. A checkpoint this version of
    `ml` cannot use (written before an upgrade changed its format) is not the job's fault: the
    run starts over, with a warning on the job."""
    algorithm = ml.get_algorithm(job.algorithm)
    config = algorithm.config.model_validate(job.config)
    data = patiently(
        f"job {job.id}: reading its datasets",
        partial(_datasets, factory, artifacts, job.id),
        patience=hooks.patience,
    )
    referenced = patiently(
        f"job {job.id}: loading the models it references",
        partial(_referenced_models, factory, artifacts, job.model_refs or {}),
        patience=hooks.patience,
    )
    resume = _resume_state(factory, artifacts, job, hooks.patience)
    if resume is not None:
        hooks.note(logging.INFO, "resuming from the checkpoint of step %d", resume.get("step", 0))
    run = partial(
        algorithm.run,
        config,
        seed=job.seed,
        hooks=hooks,
        device=settings.device,
        datasets=data,
        models=referenced,
    )
    try:
        return run(resume=resume)
    except ArtifactError as exc:
        if resume is None or isinstance(exc, ArtifactUnavailable):
            raise
        step = int(resume.get("step", 0))
        hooks.on_warning(step, "checkpoint_discarded", f"{exc.message}; training starts over")
        _start_resume(factory, job, 0, hooks.patience)
        return run(resume=None)


def _datasets(factory: Factory, artifacts: ArtifactStore, job_id: str) -> dict[str, Dataset]:
    """The uploaded datasets the job's config names, validated arrays by id."""
    with session_scope(factory) as session:
        rows = [
            (d.id, d.kind, d.artifact_uri) for d in datasets.datasets_of_job(session, job_id=job_id)
        ]
    return {dataset_id: from_npz(kind, artifacts.get(uri)) for dataset_id, kind, uri in rows}


def _referenced_models(
    factory: Factory, artifacts: ArtifactStore, pinned: dict[str, str]
) -> dict[str, TrainedModel]:
    """The finished models the job's config references, loaded, by reference; one deleted
    since the job was accepted is left out (the algorithm then says which is missing)."""
    with session_scope(factory) as session:
        rows = {ref: models.get_model(session, model_id) for ref, model_id in pinned.items()}
    return {
        ref: load_bytes(artifacts.get(row.artifact_uri))
        for ref, row in rows.items()
        if row is not None
    }


def _succeed(
    factory: Factory, job: Job, model: TrainedModel, *, model_id: str, uri: str, data: bytes
) -> bool:
    """Mark the job succeeded and create its model (and registration) in one transaction.
    Safe to run again after a connection lost at commit: the model row says the first try
    won. The final checkpoint stays (retention deletes it after CHECKPOINT_RETENTION_HOURS),
    so a new job can continue the run (`POST /v1/models/{model}/continue`)."""
    with session_scope(factory) as session:
        if models.get_model(session, model_id) is not None:
            return True
        done = jobs.finish(session, job_id=job.id, attempt=job.attempt, status=JobStatus.succeeded)
        if done:
            models.create_model(
                session,
                model_id=model_id,
                tenant=job.tenant,
                job_id=job.id,
                kind=model.kind,
                algorithm=job.algorithm,
                metadata=model.metadata,
                artifact_uri=uri,
                size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            if job.register_as:
                _register(session, job.register_as, model_id, job.tenant)
    return done


def _register(session: Session, spec: dict[str, Any], model_id: str, tenant: str) -> None:
    """Register the model under the tenant's name (names are per tenant)."""
    entry = registry.register_version(session, name=spec["name"], model_id=model_id, tenant=tenant)
    for alias in spec.get("aliases", []):
        registry.set_alias(
            session, name=entry.name, alias=alias, version=entry.version, tenant=tenant
        )


def _pass_on(factory: Factory, job_id: str, settings: Settings) -> str:
    """A message that arrives while the worker shuts down goes back to the broker unrun (its
    own message is acknowledged when the task returns)."""
    with session_scope(factory) as session:
        job = session.get(Job, job_id)
        if job is not None and job.status == JobStatus.queued:
            send(session, job_id, job.queue, settings)
    return "passed on: worker shutting down"


def _resume_state(
    factory: Factory, artifacts: ArtifactStore, job: Job, wait: float
) -> dict[str, Any] | None:
    """The job's current checkpoint (`checkpoint_uri`; a job checkpointed before per-attempt
    files has its one at the old key), after forgetting the metric points written past it.
    A job that ran before but has nothing to resume from starts over, its old points gone."""
    state: Any = None
    try:
        if job.checkpoint_uri is not None:
            state = artifacts.load_torch(job.checkpoint_uri)
        elif job.checkpoint_step is not None:
            state = artifacts.load_checkpoint(job.id)
    except MLError:
        log.exception("job %s: checkpoint unreadable, starting over", job.id)
    if not isinstance(state, dict):
        state = None
    if state is None and job.attempt == 1:
        return None  # a first run: nothing written before it
    step = int(state.get("step", 0)) if state is not None else 0
    _start_resume(factory, job, step, wait)
    log.debug("job %s: resuming from step %d", job.id, step)  # the job's log says it too
    return state


def _start_resume(factory: Factory, job: Job, step: int, wait: float) -> None:
    def start() -> None:
        with session_scope(factory) as session:
            jobs.start_resume(session, job_id=job.id, attempt=job.attempt, step=step)

    patiently(f"job {job.id}: resuming", start, patience=wait)


def _stopped(factory: Factory, hooks: JobHooks, job: Job, step: int, settings: Settings) -> str:
    wait = patience(settings)
    if hooks.lease_lost:
        return _abandoned(job)
    if hooks.cancel_requested:
        return _finish(factory, job, JobStatus.cancelled, wait)
    if hooks.timed_out:
        limit = job.max_runtime_seconds or 0.0
        return _finish(
            factory,
            job,
            JobStatus.failed,
            wait,
            error=f"the job ran longer than its limit of {limit:g} s (max_runtime_seconds); "
            f"stopped at step {step}, its last checkpoint is kept",
            error_code="timed_out",
        )
    if SHUTDOWN.is_set():
        return _release(factory, job, step, settings)
    return _finish(factory, job, JobStatus.cancelled, wait)


def _release(factory: Factory, job: Job, step: int, settings: Settings) -> str:
    """Hand the job back (the worker is shutting down) and send its message; a send that
    fails is left to the sweeper (the job is recorded as unsent)."""

    def release() -> bool:
        with session_scope(factory) as session:
            return jobs.release(session, job_id=job.id, attempt=job.attempt)

    released = patiently(f"job {job.id}: releasing", release, patience=patience(settings))
    if released:
        with session_scope(factory) as session:
            send(session, job.id, job.queue, settings)
    log.info("job %s: worker shutting down, released at step %d", job.id, step)
    return "released"


def _abandoned(job: Job) -> str:
    log.info("job %s attempt %d -> abandoned (lease lost)", job.id, job.attempt)
    return "abandoned: lease lost"


def _finish(factory: Factory, job: Job, status: JobStatus, wait: float, **values: Any) -> str:
    def finish() -> bool:
        with session_scope(factory) as session:
            return jobs.finish(session, job_id=job.id, attempt=job.attempt, status=status, **values)

    try:
        done = patiently(f"job {job.id}: recording {status.value}", finish, patience=wait)
    except DatabaseUnavailable:
        log.error("job %s: could not record %s; left to its lease", job.id, status.value)
        raise
    log.info(
        "job %s attempt %d -> %s%s",
        job.id,
        job.attempt,
        status.value,
        "" if done else " (lease lost, not recorded)",
    )
    return status.value if done else "abandoned: lease lost"


def _free_memory() -> None:
    """Long-lived GPU workers hand memory back between jobs."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
