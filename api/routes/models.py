"""Models: a succeeded job's model, and the queries it answers.

Routes are plain `def`s, so FastAPI runs them in its thread pool: loading a model and
running a network never block the event loop.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

import ml
from api.deps import ModelCacheDep, SessionDep, SettingsDep
from api.errors import ApiError
from api.routes.jobs import load_job
from api.schemas import (
    ActionsRequest,
    ActionsResponse,
    ModelPublic,
    QValuesRequest,
    RewardsRequest,
    SamplesRequest,
    SamplesResponse,
)
from ml.core.errors import ArtifactError
from ml.core.model import TrainedModel
from store import jobs
from store.models import Job, JobStatus

router = APIRouter(prefix="/v1/models", tags=["models"])


def succeeded_job(session: SessionDep, model_id: str) -> Job:
    job = load_job(session, model_id)
    if job.status != JobStatus.succeeded or not job.artifact_path:
        raise ApiError(
            409,
            "model_not_ready",
            f"job {model_id} is {job.status}; only a succeeded job has a model",
        )
    return job


def load_model(
    session: SessionDep, cache: ModelCacheDep, model_id: str, query: str
) -> TrainedModel:
    job = succeeded_job(session, model_id)
    try:
        model = cache.get(job.id, job.artifact_path or "")
    except ArtifactError as exc:  # the file is gone or damaged: our problem, not the client's
        raise ApiError(503, "model_unavailable", f"model {model_id}: {exc.message}") from None
    if query not in model.queries:
        answers = ", ".join(model.queries)
        raise ApiError(
            422,
            "unsupported_query",
            f"a {model.kind} model does not answer '{query}'; it answers: {answers}",
            field="query",
        )
    return model


@router.get("/{model_id}")
def get_model(model_id: str, session: SessionDep) -> ModelPublic:
    job = succeeded_job(session, model_id)
    meta: dict[str, Any] = job.model_metadata or {}
    return ModelPublic(
        id=job.id,
        job_id=job.id,
        kind=meta.get("kind", job.algorithm),
        algorithm=job.algorithm,
        queries=list(_queries(job.algorithm)),
        shapes=meta.get("shapes", {}),
        config=job.config,
        seed=job.seed,
        versions=meta.get("versions", {}),
        summary=meta.get("summary", {}),
        metrics_summary=jobs.metric_summary(session, job_id=job.id),
        created_at=job.finished_at,
    )


def _queries(algorithm: str) -> tuple[str, ...]:
    return ml.ALGORITHMS[algorithm].queries if algorithm in ml.ALGORITHMS else ()


@router.post("/{model_id}/samples")
def samples(
    model_id: str,
    body: SamplesRequest,
    session: SessionDep,
    cache: ModelCacheDep,
    settings: SettingsDep,
) -> SamplesResponse:
    if body.n > settings.max_samples:
        raise ApiError(
            422,
            "validation_error",
            f"n: at most {settings.max_samples} samples per request",
            field="n",
        )
    model = load_model(session, cache, model_id, "samples")
    points = model.samples(body.n, seed=body.seed)
    return SamplesResponse(samples=points.tolist(), n=body.n, seed=body.seed)


@router.post("/{model_id}/q-values")
def q_values(
    model_id: str, body: QValuesRequest, session: SessionDep, cache: ModelCacheDep
) -> dict[str, Any]:
    model = load_model(session, cache, model_id, "q-values")
    return model.q_values(observations=body.observations, states=body.states)


@router.post("/{model_id}/actions")
def actions(
    model_id: str, body: ActionsRequest, session: SessionDep, cache: ModelCacheDep
) -> ActionsResponse:
    model = load_model(session, cache, model_id, "actions")
    return ActionsResponse(actions=model.actions(body.observations))


@router.get("/{model_id}/values")
def values(model_id: str, session: SessionDep, cache: ModelCacheDep) -> dict[str, Any]:
    return load_model(session, cache, model_id, "values").values()


@router.get("/{model_id}/rewards")
def reward_table(model_id: str, session: SessionDep, cache: ModelCacheDep) -> dict[str, Any]:
    return load_model(session, cache, model_id, "rewards").rewards()


@router.post("/{model_id}/rewards")
def rewards(
    model_id: str, body: RewardsRequest, session: SessionDep, cache: ModelCacheDep
) -> dict[str, Any]:
    return load_model(session, cache, model_id, "rewards").rewards(body.states)
