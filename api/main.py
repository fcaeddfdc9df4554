"""Builds the FastAPI app: `uvicorn api.main:app`."""

from __future__ import annotations

import gc
import logging

import torch
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import docs, errors, middleware, openapi
from api.auth import KeyCache
from api.cross_site import CrossSiteGuard
from api.limits import QueryRate
from api.model_cache import ModelCache, ModelRows
from api.openapi import declare_errors
from api.routes import (
    algorithms,
    dashboard,
    datasets,
    environments,
    events,
    health,
    jobs,
    keys,
    metrics,
    models,
    monitoring,
    queries,
    registry,
)
from store import logging_setup
from store.artifacts import open_artifact_store
from store.db import session_factory
from store.settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # The format every process shares; uvicorn's lines too, its access log if ACCESS_LOG.
    logging_setup.configure(settings.log_level, access_log=settings.access_log)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    app = FastAPI(
        title="Crucible",
        version="0.1.0",
        description="Train generative and decision-making models over HTTP, then query them.",
        # Served by `api.docs` with their assets from this API, not from a CDN.
        docs_url=None,
        redoc_url=None,
        # Operation ids are the route functions' names (`create_job`), unique by check.
        generate_unique_id_function=openapi.unique_id,
    )
    app.state.settings = settings
    app.state.artifacts = open_artifact_store(settings)
    app.state.model_cache = ModelCache(settings.model_cache_size, app.state.artifacts.load_model)
    app.state.model_rows = ModelRows()
    app.state.key_cache = KeyCache()
    app.state.query_rate = QueryRate()
    announce_access(settings)
    # The engine, its pool sized by these settings rather than the environment's.
    session_factory(settings.resolved_database_url, settings)
    errors.install(app)
    docs.install(app)
    # Every status each operation can answer is declared, with the error body.
    # `metrics` before `jobs`: /v1/jobs/compare is not a job id.
    for module in (
        health,
        algorithms,
        environments,
        metrics,
        jobs,
        events,
        models,
        registry,
        datasets,
        keys,
        monitoring,
        dashboard,
    ):
        app.include_router(declare_errors(module.router))
    # One route per declared query, from `ml.queries`.
    app.include_router(declare_errors(queries.router_for_queries()))
    # The document finished: the job spec's union, examples, summaries, typed responses.
    openapi.install(app)
    # Plain ASGI middlewares (see `api.middleware`); the last added is the outermost.
    app.add_middleware(
        middleware.BodyLimit,
        max_bytes=settings.max_request_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    allowed = settings.allowed_origins
    app.add_middleware(CrossSiteGuard, allowed=frozenset(allowed))
    if allowed:
        # Outside the guard, so a preflight is answered before anything else looks at it.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=allowed,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["authorization", "content-type", "accept", "idempotency-key"],
            expose_headers=["location", "retry-after", "x-request-id"],
            max_age=600,
        )
    app.add_middleware(middleware.InternalErrors)
    # Every request admitted can have a thread and a connection at once, so none ever waits
    # for either while holding the other (fastapi#3205); the rest wait their turn, briefly.
    workers = min(settings.api_max_in_flight, settings.db_pool_size + settings.db_max_overflow)
    app.add_middleware(
        middleware.LoadShedding,
        limit=workers,
        threads=workers,
        exempt_when=events.is_stream,
        queue=4 * settings.api_max_in_flight,
    )
    # Outermost: even a shed or refused request is answered with its X-Request-ID.
    app.add_middleware(middleware.ControlCharacters)
    app.add_middleware(middleware.RequestId)
    return app


def announce_access(settings: Settings) -> None:
    """Say at start-up who may call: an open API must never be a surprise."""
    if settings.auth_required:
        log.info("API keys required (AUTH_REQUIRED=true)")
    else:
        log.warning(
            "AUTH_REQUIRED=false: the API is OPEN, anyone who can reach it acts as tenant "
            "'default' without a key and without quotas. Keep it on loopback, or set "
            "AUTH_REQUIRED=true and ADMIN_API_KEY."
        )


app = create_app()
# Everything loaded so far (torch, SQLAlchemy, FastAPI: some 260,000 objects) lives as long as
# the process. Out of the collector's sight, a full collection no longer walks it: that took
# 150 ms, and under load came every few seconds, the API's slowest answers.
gc.collect()
gc.freeze()
