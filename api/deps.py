"""FastAPI dependencies and their shortcut types."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.model_cache import ModelCache
from store.db import session_factory, session_scope
from store.settings import Settings, get_settings


def get_session(settings: Annotated[Settings, Depends(get_settings)]) -> Iterator[Session]:
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        yield session


def get_model_cache(request: Request) -> ModelCache:
    cache: ModelCache = request.app.state.model_cache
    return cache


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
ModelCacheDep = Annotated[ModelCache, Depends(get_model_cache)]
