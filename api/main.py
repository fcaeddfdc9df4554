"""Builds the FastAPI app: `uvicorn api.main:app`."""

from __future__ import annotations

import gc
import logging

import torch
from fastapi import FastAPI

from api import errors, middleware
from api.model_cache import ModelCache, ModelRows
from api.routes import algorithms, datasets, health, jobs, models, queries, registry
from store.artifacts import open_artifact_store
from store.db import session_factory
from store.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    app = FastAPI(
        title="Crucible",
        version="0.1.0",
        description="Train generative and decision-making models over HTTP, then query them.",
    )
    app.state.settings = settings
    app.state.artifacts = open_artifact_store(settings)
    app.state.model_cache = ModelCache(settings.model_cache_size, app.state.artifacts.load_model)
    app.state.model_rows = ModelRows()
    # The engine, its pool sized by these settings rather than the environment's.
    session_factory(settings.resolved_database_url, settings)
    errors.install(app)
    for module in (health, algorithms, jobs, models, registry, datasets):
        app.include_router(module.router)
    queries.install(app)  # one route per declared query, from `ml.queries`
    # Plain ASGI middlewares (see `api.middleware`); the last added is the outermost.
    app.add_middleware(
        middleware.BodyLimit,
        max_bytes=settings.max_request_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(middleware.InternalErrors)
    # Every request admitted can have a thread and a connection at once, so none ever waits
    # for either while holding the other (fastapi#3205); the rest wait their turn, briefly.
    workers = min(settings.api_max_in_flight, settings.db_pool_size + settings.db_max_overflow)
    app.add_middleware(
        middleware.LoadShedding,
        limit=workers,
        threads=workers,
        queue=4 * settings.api_max_in_flight,
    )
    return app


app = create_app()
# Everything loaded so far (torch, SQLAlchemy, FastAPI: some 260,000 objects) lives as long as
# the process. Out of the collector's sight, a full collection no longer walks it: that took
# 150 ms, and under load came every few seconds, the API's slowest answers.
gc.collect()
gc.freeze()
