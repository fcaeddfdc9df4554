"""Builds the FastAPI app: `uvicorn api.main:app`."""

from __future__ import annotations

import logging

import torch
from fastapi import FastAPI

from api import errors
from api.model_cache import ModelCache
from api.routes import algorithms, datasets, health, jobs, models, queries, registry
from store.artifacts import open_artifact_store
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
    app.state.artifacts = open_artifact_store(settings)
    app.state.model_cache = ModelCache(settings.model_cache_size, app.state.artifacts.load_model)
    errors.install(app)
    errors.limit_body_size(app, settings.max_request_bytes, settings.max_upload_bytes)
    for module in (health, algorithms, jobs, models, registry, datasets):
        app.include_router(module.router)
    queries.install(app)  # one route per declared query, from `ml.queries`
    return app


app = create_app()
