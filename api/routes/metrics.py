"""A job's metrics, as series for programs and as training curves for people: one job's
(`GET /v1/jobs/{id}/metrics`), or several overlaid to compare runs
(`GET /v1/jobs/compare?job=a&job=b`), the way TensorBoard and MLflow show them. JSON by
default; `Accept: image/png` or `?format=png` draws the curves (`ml.queries.figures`), smoothed
as TensorBoard smooths (`smoothing`), from whatever a running job has reported so far.

Declared before the jobs router, so that `/v1/jobs/compare` is not read as a job id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import ReadCaller
from api.deps import SessionDep
from api.errors import ApiError
from api.negotiation import Format, negotiate_media
from api.openapi import ErrorBody
from api.routes.jobs import load_job
from api.schemas import ComparePublic, MetricSeries, MetricsPublic
from api.strict_input import StrictRoute
from ml.queries import JSON, PNG
from ml.queries.figures import curves_png
from store import jobs

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=StrictRoute)

MAX_COMPARED = 8
OFFERED = (JSON, PNG)
PNG_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {PNG: {}}, "description": "The series, or their curves."},
    404: {"model": ErrorBody, "description": "No such job (another tenant's is not found)."},
    406: {"model": ErrorBody, "description": "None of the accepted media types is offered."},
}

Names = Annotated[
    list[str] | None,
    Query(max_length=100, description="Only these metric names (repeat the parameter)."),
]
Smoothing = Annotated[
    float,
    Query(
        ge=0.0,
        lt=1.0,
        description="PNG only: the weight of TensorBoard's exponential moving average drawn "
        "over the raw curve (0: raw only).",
    ),
]


def _series(session: SessionDep, job_id: str, names: list[str] | None) -> dict[str, MetricSeries]:
    found = jobs.metric_series(session, job_id=job_id, names=names)
    return {k: MetricSeries(steps=s, values=v) for k, (s, v) in found.items()}


async def _png(runs: dict[str, dict[str, MetricSeries]], smoothing: float, title: str) -> Response:
    drawn = {label: {k: (m.steps, m.values) for k, m in s.items()} for label, s in runs.items()}
    try:
        png = await run_in_threadpool(curves_png, drawn, smoothing=smoothing, title=title)
    except ValueError as exc:
        raise ApiError(422, "validation_error", str(exc), field="name") from None
    return Response(png, media_type=PNG)


@router.get(
    "/compare",
    summary="Compare jobs' metrics",
    operation_id="compare_jobs",
    responses=PNG_RESPONSE,
    response_model=ComparePublic,
)
async def compare_jobs(
    request: Request,
    caller: ReadCaller,
    session: SessionDep,
    job: Annotated[list[str], Query(min_length=1, description=f"Job ids, 1 to {MAX_COMPARED}.")],
    name: Names = None,
    smoothing: Smoothing = 0.6,
    format: Format = None,
) -> ComparePublic | Response:
    """Several jobs' series side by side, or (PNG) their curves overlaid, one colour per
    job (labelled by its name, or its id)."""
    if len(job) > MAX_COMPARED:
        raise ApiError(422, "validation_error", f"compare at most {MAX_COMPARED} jobs", field="job")
    media = negotiate_media("comparing jobs", OFFERED, request.headers.get("accept"), format)
    found = {job_id: load_job(session, job_id, caller) for job_id in dict.fromkeys(job)}
    runs = {job_id: _series(session, job_id, name) for job_id in found}
    if media == PNG:
        labels = {job_id: row.name or job_id[:8] for job_id, row in found.items()}
        return await _png({labels[j]: s for j, s in runs.items()}, smoothing, "")
    return ComparePublic(
        jobs={job_id: MetricsPublic(job_id=job_id, metrics=s) for job_id, s in runs.items()}
    )


@router.get(
    "/{job_id}/metrics",
    summary="A job's metric series",
    operation_id="get_job_metrics",
    responses=PNG_RESPONSE,
    response_model=MetricsPublic,
)
async def get_metrics(
    request: Request,
    job_id: str,
    caller: ReadCaller,
    session: SessionDep,
    name: Names = None,
    smoothing: Smoothing = 0.6,
    format: Format = None,
) -> MetricsPublic | Response:
    """Every metric the job reported, by name: steps and values; or (PNG) one panel per
    metric, while the job runs too."""
    media = negotiate_media("a job's metrics", OFFERED, request.headers.get("accept"), format)
    row = load_job(session, job_id, caller)
    series = _series(session, job_id, name)
    if media == PNG:
        title = f"{row.algorithm} · {row.name or job_id[:8]} · {row.status}"
        return await _png({row.name or job_id[:8]: series}, smoothing, title)
    return MetricsPublic(job_id=job_id, metrics=series)
