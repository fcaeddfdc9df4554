"""Heavy queries as short jobs: an evaluation of many episodes, a t-SNE of thousands of points.

The API turns a heavy query into a `query` job on the `queries` queue (so it never waits
behind training) and answers 202 with the result's location. This runs it under the same
lease as a training job (claimed, heart-beaten, idempotent on redelivery), stores the
rendered answer in the artifact store, and records when it expires; until then an identical
query reuses it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ml.core.errors import ArtifactError, MLError
from ml.core.model import TrainedModel
from ml.queries import get_query
from store import jobs, models
from store.artifacts import ArtifactStore
from store.db import session_scope
from store.settings import Settings
from store.tables import Job, JobStatus, utcnow
from worker.hooks import JobHooks, internal_failure, is_db_outage, patiently

log = logging.getLogger(__name__)

Factory = sessionmaker[Session]
MODEL_CACHE_SIZE = 4


class _ModelCache:
    """The last few models a worker process answered queries for, by model id (models are
    immutable, so an id is a safe key)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._models: OrderedDict[str, TrainedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_id: str, uri: str, artifacts: ArtifactStore) -> TrainedModel:
        with self._lock:
            if model_id in self._models:
                self._models.move_to_end(model_id)
                return self._models[model_id]
        model = artifacts.load_model(uri)
        with self._lock:
            self._models[model_id] = model
            while len(self._models) > self._size:
                self._models.popitem(last=False)
        return model


_models = _ModelCache(MODEL_CACHE_SIZE)


def run_query(
    job: Job, hooks: JobHooks, factory: Factory, artifacts: ArtifactStore, settings: Settings
) -> str:
    """Answer the query job's request and store the result; errors are recorded, not raised."""
    spec = job.config  # {"model_id", "query", "request", "media_type"}
    reference = f"{job.id}/{job.attempt}"

    def model_uri() -> str | None:
        with session_scope(factory) as session:
            row = models.get_model(session, spec["model_id"])
            return row.artifact_uri if row is not None else None

    try:
        with hooks:
            uri = patiently(f"query job {job.id}", model_uri, patience=hooks.patience)
            if uri is None:
                raise MLError(f"model {spec['model_id']} no longer exists", field="model")
            query = get_query(spec["query"])
            model = _models.get(spec["model_id"], uri, artifacts)
            body = query.render(query.answer(model, spec["request"]), spec["media_type"])
            # a key per attempt: a stale attempt that deletes its result keeps the owner's
            result_uri = artifacts.put(f"query-results/{job.id}/{job.attempt}", body)
    except ArtifactError as exc:  # the store's words name paths and hosts: for the log only
        log.error("query job %s failed (reference %s): %s", job.id, reference, exc.message)
        failure = internal_failure(job.id, job.attempt)
        return _end(factory, job, hooks, JobStatus.failed, error=failure, error_code=exc.code)
    except MLError as exc:
        return _end(factory, job, hooks, JobStatus.failed, error=exc.message, error_code=exc.code)
    except Exception as exc:
        if is_db_outage(exc):  # not the query's fault: its lease expires and it runs again
            raise
        # A bug: the traceback is for the log, never for the client; keep the worker alive.
        log.exception("query job %s failed (reference %s)", job.id, reference)
        failure = internal_failure(job.id, job.attempt)
        return _end(
            factory, job, hooks, JobStatus.failed, error=failure, error_code="internal_error"
        )
    expires = utcnow() + timedelta(seconds=settings.query_result_ttl_seconds)
    try:
        outcome = _end(
            factory,
            job,
            hooks,
            JobStatus.succeeded,
            result_uri=result_uri,
            result_media_type=spec["media_type"],
            expires_at=expires,
        )
    except BaseException:
        artifacts.delete(result_uri)
        raise
    if outcome != JobStatus.succeeded.value:
        artifacts.delete(result_uri)
    return outcome


def _end(factory: Factory, job: Job, hooks: JobHooks, status: JobStatus, **values: Any) -> str:
    """Record the outcome, waiting out a database outage. Safe to run again after a
    connection lost at commit: a job already in `status` with the same result won."""

    def end() -> bool:
        with session_scope(factory) as session:
            if jobs.finish(session, job_id=job.id, attempt=job.attempt, status=status, **values):
                return True
            row = jobs.get_job(session, job.id)
            return row.status == status.value and row.result_uri == values.get("result_uri")

    done = patiently(f"query job {job.id}: recording {status.value}", end, patience=hooks.patience)
    return status.value if done else "abandoned: lease lost"


def drop_expired_results(factory: Factory, artifacts: ArtifactStore) -> int:
    """Delete expired query jobs and their results (called by the sweeper)."""
    with session_scope(factory) as session:
        expired = [(j.id, j.result_uri) for j in jobs.expired_queries(session)]
    for job_id, uri in expired:
        if uri:
            artifacts.delete(uri)
        with session_scope(factory) as session:
            jobs.delete_job(session, job_id=job_id)
    return len(expired)
