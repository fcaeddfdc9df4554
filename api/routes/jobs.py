"""Jobs: submit, list, inspect, cancel, and read metric series."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import ValidationError

import ml
from api.deps import ModelCacheDep, SessionDep
from api.errors import ApiError, from_validation
from api.schemas import JobCreate, JobPublic, JobsPublic, MetricSeries, MetricsPublic, Progress
from store import jobs
from store.models import Job, JobStatus
from worker.enqueue import enqueue_job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


JOB_COLUMNS = [name for name in JobPublic.model_fields if name in Job.__table__.columns]


def to_public(job: Job) -> JobPublic:
    total = job.progress_total
    fraction = min(1.0, job.progress_step / total) if total else None
    if job.status == JobStatus.succeeded:
        fraction = 1.0
    links = {"self": f"/v1/jobs/{job.id}", "metrics": f"/v1/jobs/{job.id}/metrics"}
    if job.status == JobStatus.succeeded:
        links["model"] = f"/v1/models/{job.id}"
    # Every column the public schema shares with the table, plus what is derived.
    columns = {name: getattr(job, name) for name in JOB_COLUMNS}
    progress = Progress(
        step=job.progress_step, total=total, fraction=fraction, eta_seconds=jobs.eta_seconds(job)
    )
    return JobPublic(**columns, progress=progress, links=links)


def load_job(session: SessionDep, job_id: str) -> Job:
    try:
        return jobs.get_job(session, job_id)
    except jobs.JobNotFound:
        raise ApiError(404, "job_not_found", f"no job with id {job_id!r}", field="id") from None


@router.post("", status_code=202)
def create_job(body: JobCreate, session: SessionDep, response: Response) -> JobPublic:
    if body.algorithm not in ml.ALGORITHMS:
        known = ", ".join(sorted(ml.ALGORITHMS))
        raise ApiError(
            422,
            "unknown_algorithm",
            f"unknown algorithm {body.algorithm!r}; known: {known}",
            field="algorithm",
        )
    algorithm = ml.ALGORITHMS[body.algorithm]
    try:
        config = algorithm.config.model_validate(body.config)
    except ValidationError as exc:
        raise from_validation(list(exc.errors()), prefix="config") from None
    except ml.ConfigError as exc:
        field = f"config.{exc.field}" if exc.field else "config"
        raise ApiError(422, exc.code, exc.message, field=field) from None
    job = jobs.create_job(
        session,
        algorithm=algorithm.name,
        config=config.model_dump(mode="json"),
        seed=body.seed,
        queue=algorithm.queue,
        name=body.name,
        tags=body.tags,
    )
    session.commit()  # the worker must find the row before it gets the message
    if enqueue_job(job.id, job.queue):
        jobs.mark_enqueued(session, job_id=job.id)
        session.commit()
    session.refresh(job)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return to_public(job)


@router.get("")
def list_jobs(
    session: SessionDep,
    status: Annotated[JobStatus | None, Query()] = None,
    algorithm: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobsPublic:
    rows, count = jobs.list_jobs(
        session,
        status=status.value if status else None,
        algorithm=algorithm,
        limit=limit,
        offset=offset,
    )
    return JobsPublic(data=[to_public(j) for j in rows], count=count, limit=limit, offset=offset)


@router.get("/{job_id}")
def get_job(job_id: str, session: SessionDep, cache: ModelCacheDep) -> JobPublic:
    job = load_job(session, job_id)
    if job.status == JobStatus.succeeded and job.artifact_path:
        cache.warm(job.id, job.artifact_path)  # the client's next call is likely a query
    return to_public(job)


@router.post("/{job_id}/cancel", status_code=202)
def cancel_job(job_id: str, session: SessionDep) -> JobPublic:
    load_job(session, job_id)
    try:
        job = jobs.request_cancel(session, job_id=job_id)
    except jobs.InvalidTransition as exc:
        raise ApiError(409, "job_finished", str(exc)) from None
    session.commit()
    return to_public(job)


@router.get("/{job_id}/metrics")
def get_metrics(
    job_id: str,
    session: SessionDep,
    name: Annotated[list[str] | None, Query(description="Only these metric names.")] = None,
) -> MetricsPublic:
    load_job(session, job_id)
    series = jobs.metric_series(session, job_id=job_id, names=name)
    return MetricsPublic(
        job_id=job_id,
        metrics={k: MetricSeries(steps=s, values=v) for k, (s, v) in series.items()},
    )
