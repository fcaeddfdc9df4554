"""FastAPI dependencies and their shortcut types."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.errors import ApiError
from api.model_cache import ModelCache
from store import models
from store.artifacts import ArtifactStore
from store.db import session_factory, session_scope
from store.settings import Settings, get_settings
from store.tables import TrainedModelRow


def get_session(settings: Annotated[Settings, Depends(get_settings)]) -> Iterator[Session]:
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        yield session


def get_model_cache(request: Request) -> ModelCache:
    cache: ModelCache = request.app.state.model_cache
    return cache


def get_artifacts(request: Request) -> ArtifactStore:
    artifacts: ArtifactStore = request.app.state.artifacts
    return artifacts


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
ModelCacheDep = Annotated[ModelCache, Depends(get_model_cache)]
ArtifactsDep = Annotated[ArtifactStore, Depends(get_artifacts)]


def resolve_model(session: Session, reference: str) -> TrainedModelRow:
    """The model a path's `{model}` names: model id, job id, name@alias or name@N."""
    try:
        return models.resolve(session, reference)
    except models.ModelNotReady as exc:
        raise ApiError(409, "model_not_ready", str(exc), field="model") from None
    except models.ModelNotFound as exc:
        raise ApiError(404, "model_not_found", exc.message, field="model") from None


def resolved_model(model: str, settings: SettingsDep) -> TrainedModelRow:
    """`resolve_model` in a transaction of its own, closed before the route runs: a query
    may compute for a while, and must not hold a pooled connection meanwhile."""
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        return resolve_model(session, model)


ResolvedModelDep = Annotated[TrainedModelRow, Depends(resolved_model)]
