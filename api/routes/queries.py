"""Every declared query (`ml.queries`) served at `/v1/models/{model}/{query}`: no per-query
code here. Each gets a typed POST (and a GET when it needs no input), its request and
response schemas in the OpenAPI document, and content negotiation (`Accept`, or `?format=`).

A query that says it is heavy for a request runs as a short job on the `queries` queue: the
answer is 202 with `Location: /v1/query-results/{id}`, which answers 202 while it runs and
the result when done. The same query on the same model with the same request and media type
reuses a pending or unexpired result instead of running again.

(No `from __future__ import annotations` here: FastAPI reads the generated endpoints'
annotations, which name each query's request class.)
"""

import hashlib
import io
import json
import logging
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Request, Response, Security
from fastapi.openapi.models import Example
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.auth import Caller, Scope, authorize
from api.deps import ArtifactsDep, ModelCacheDep, SessionDep, SettingsDep
from api.errors import ApiError, error_body
from api.limits import QueryCaller
from api.model_cache import ModelCache
from api.negotiation import Format, negotiate_media
from api.prometheus import timed_query
from api.references import ResolvedModelDep
from api.routes.datasets import store_dataset
from api.schemas import QueryResultPending
from api.strict_input import StrictRoute
from ml.core.errors import ArtifactError
from ml.core.model import TrainedModel
from ml.queries import JSON, QUERIES, queries_for_kind
from ml.queries import Query as DeclaredQuery
from store import jobs
from store.artifacts import ArtifactMissing, ArtifactStore
from store.db import session_factory, session_scope
from store.models import shown
from store.settings import Settings
from store.tables import Job, JobKind, JobStatus, TrainedModelRow
from worker.enqueue import QUERY_QUEUE, send

log = logging.getLogger(__name__)


def negotiate(query: DeclaredQuery[Any, Any], accept: str | None, format: str | None) -> str:
    """The media type to answer the query in, or 406 naming those it can answer."""
    return negotiate_media(f"'{query.name}'", query.media_types, accept, format)


# -- answering ---------------------------------------------------------------------------------
def load(cache: ModelCache, row: TrainedModelRow) -> TrainedModel:
    try:
        model: TrainedModel = cache.get(row.id, row.artifact_uri)
    except ArtifactError as exc:  # the file is gone or damaged: our problem, not the client's
        log.warning("model %s cannot be loaded: %s", row.id, exc.message)  # paths: log only
        raise ApiError(
            503,
            "model_unavailable",
            f"model {row.id} cannot be loaded right now (its file is missing or unreadable); "
            "the server's log has the details",
        ) from None
    return model


def check_supported(query: DeclaredQuery[Any, Any], row: TrainedModelRow) -> None:
    answers = queries_for_kind(row.kind)
    if query.name not in answers:
        raise ApiError(
            422,
            "unsupported_query",
            f"a {row.kind} model does not answer '{query.name}'; it answers: "
            f"{', '.join(answers) or 'nothing'}",
            field="query",
        )


def check_size(query: DeclaredQuery[Any, Any], body: Any, settings: Settings) -> None:
    """A request for more samples than this server answers at once (`MAX_SAMPLES`) is 422."""
    if query.asks_for is None:
        return
    field, count = query.asks_for(body)
    if count > settings.max_samples:
        raise ApiError(
            422,
            "too_many_samples",
            f"{field} asks for {count:,} samples; this server answers at most "
            f"{settings.max_samples:,} per request (its MAX_SAMPLES setting): ask in batches",
            field=field,
        )


def cache_key(row: TrainedModelRow, query: str, request: dict[str, Any], media: str) -> str:
    canonical = json.dumps([row.id, query, request, media], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_heavy(
    settings: Settings,
    row: TrainedModelRow,
    query: DeclaredQuery[Any, Any],
    request: dict[str, Any],
    media: str,
) -> JSONResponse:
    key = cache_key(row, query.name, request, media)
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        return _submit_heavy(session, settings, row, query, request, media, key)


def _submit_heavy(
    session: Session,
    settings: Settings,
    row: TrainedModelRow,
    query: DeclaredQuery[Any, Any],
    request: dict[str, Any],
    media: str,
    key: str,
) -> JSONResponse:
    job = jobs.reusable_query(session, cache_key=key)
    if job is None:
        job = jobs.create_job(
            session,
            kind=JobKind.query,
            algorithm=row.algorithm,
            config={
                "model_id": row.id,
                "query": query.name,
                "request": request,
                "media_type": media,
            },
            seed=0,
            queue=QUERY_QUEUE,
            cache_key=key,
            tenant=row.tenant,
        )
        session.commit()
        send(session, job.id, QUERY_QUEUE, settings)
    return pending(job.id, job.status, query.name, row.id)


def pending(job_id: str, status: str, query: str, model_id: str) -> JSONResponse:
    location = f"/v1/query-results/{job_id}"
    body = QueryResultPending(
        id=job_id, status=status, query=query, model_id=model_id, location=location
    )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=202,
        headers={"Location": location, "Retry-After": "1"},
    )


def answer(
    query: DeclaredQuery[Any, Any],
    body: Any,
    row: TrainedModelRow,
    http: Request,
    format: str | None,
    cache: ModelCache,
    settings: Settings,
    caller: Caller,
    artifacts: ArtifactStore,
) -> Response:
    with timed_query(query.name) as outcome:
        check_supported(query, row)
        check_size(query, body, settings)
        media = negotiate(query, http.headers.get("accept"), format)
        saving = query.dataset_of is not None and query.keeps(body)
        if saving and Scope.train not in caller.scopes:
            raise ApiError(
                403,
                "missing_scope",
                "saving an answer as a dataset needs the train scope",
                field="save_as_dataset",
            )
        if query.heavy(body):
            outcome("queued")
            return submit_heavy(settings, row, query, body.model_dump(mode="json"), media)
        result = query.answer(load(cache, row), body)
        if saving:
            result = keep_as_dataset(query, body, result, settings, caller, artifacts)
        return Response(query.render(result, media), media_type=media)


def keep_as_dataset(
    query: DeclaredQuery[Any, Any],
    body: Any,
    result: Any,
    settings: Settings,
    caller: Caller,
    artifacts: ArtifactStore,
) -> Any:
    """Store the answer as the dataset the query makes of it (in a transaction of its own,
    after the computation), and name it in the answer's `dataset`."""
    assert query.dataset_of is not None
    saved = query.dataset_of(body, result)
    buffer = io.BytesIO()
    np.savez(buffer, **saved.arrays)
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        dataset, created = store_dataset(
            session,
            artifacts,
            settings,
            caller,
            kind=saved.kind,
            data=buffer.getvalue(),
            name=saved.name,
        )
        reference = {"kind": "uploaded", "id": dataset.id}
        described = {
            "id": dataset.id,
            "kind": dataset.kind,
            "name": dataset.name,
            "rows": dataset.rows,
            "created": created,
            "reference": reference,
        }
    return result.model_copy(update={"dataset": described})


def responses(query: DeclaredQuery[Any, Any]) -> dict[int | str, dict[str, Any]]:
    extra: dict[str, Any] = {media: {} for media in query.media_types if media != JSON}
    return {
        200: {"content": extra, "description": "The answer."}
        if extra
        else {"description": "The answer."},
        202: {"model": QueryResultPending, "description": "Heavy: running on a worker."},
        406: {"description": "None of the accepted media types is offered."},
    }


def default_request(query: DeclaredQuery[Any, Any]) -> Any:
    if query.takes_input:
        raise ApiError(
            422, "body_required", f"{query.name} needs a JSON body; see its schema", field="body"
        )
    return query.request()


def add_query_routes(router: APIRouter, query: DeclaredQuery[Any, Any]) -> None:
    operation = query.name.replace("-", "_")
    examples: dict[str, Example] = {
        f"example {i + 1}": {"value": e} for i, e in enumerate(query.examples)
    }

    def post(
        caller: QueryCaller,
        row: ResolvedModelDep,
        http: Request,
        cache: ModelCacheDep,
        settings: SettingsDep,
        artifacts: ArtifactsDep,
        format: Format = None,
        body: Any = None,
    ) -> Response:
        if body is None:  # no body: the defaults, when the query needs no input
            body = default_request(query)
        return answer(query, body, row, http, format, cache, settings, caller, artifacts)

    post.__annotations__["body"] = Annotated[query.request, Body(openapi_examples=examples or None)]
    router.add_api_route(
        f"/v1/models/{{model}}/{query.name}",
        post,
        methods=["POST"],
        response_model=query.response,
        responses=responses(query),
        summary=query.summary,
        description=query.description,
        operation_id=f"query_{operation}",
        tags=["queries"],
        deprecated=query.deprecated or None,
    )
    if query.takes_input:
        return

    def get(
        caller: QueryCaller,
        row: ResolvedModelDep,
        http: Request,
        cache: ModelCacheDep,
        settings: SettingsDep,
        artifacts: ArtifactsDep,
        format: Format = None,
    ) -> Response:
        request = query.request()
        return answer(query, request, row, http, format, cache, settings, caller, artifacts)

    router.add_api_route(
        f"/v1/models/{{model}}/{query.name}",
        get,
        methods=["GET"],
        response_model=query.response,
        responses=responses(query),
        summary=f"{query.summary} (no input)",
        description=query.description,
        operation_id=f"query_{operation}_get",
        tags=["queries"],
        deprecated=query.deprecated or None,
    )


def router_for_queries() -> APIRouter:
    """Routes for every query declared when the app is built."""
    router = APIRouter(route_class=StrictRoute)
    for query in QUERIES.values():
        add_query_routes(router, query)
    router.add_api_route(
        "/v1/query-results/{result_id}",
        query_result,
        methods=["GET"],
        summary="Fetch the result of a heavy query",
        operation_id="get_query_result",
        tags=["queries"],
        response_class=Response,
        responses={202: {"model": QueryResultPending, "description": "Still running."}},
    )
    return router


def query_result(
    result_id: str,
    caller: Annotated[Caller, Security(authorize, scopes=[Scope.query])],  # polls: no rate
    session: SessionDep,
    artifacts: ArtifactsDep,
) -> Response:
    job = session.get(Job, result_id)
    if job is None or job.kind != JobKind.query or job.tenant != caller.tenant:
        raise ApiError(
            404, "query_result_not_found", f"no query result {shown(result_id)}", field="id"
        )
    spec = job.config
    if job.status in (JobStatus.queued, JobStatus.running):
        return pending(job.id, job.status, spec["query"], spec["model_id"])
    if job.status == JobStatus.succeeded and job.result_uri:
        try:
            data = artifacts.get(job.result_uri)
        except ArtifactMissing:
            raise ApiError(404, "query_result_expired", f"result {result_id} has expired") from None
        return Response(data, media_type=job.result_media_type or JSON)
    if job.error_code in ("invalid_query", "unsupported_query", "invalid_input"):
        return JSONResponse(error_body(job.error_code, job.error or "", None), status_code=422)
    return JSONResponse(
        error_body("query_failed", f"the query failed: {job.error or job.status}"),
        status_code=503,
    )
