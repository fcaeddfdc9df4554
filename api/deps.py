"""FastAPI dependencies and their shortcut types.

A plain `def` dependency costs a trip to the thread pool on every request, and under load each
trip waits its turn behind every request ahead of it; these are `async def` and touch nothing
that blocks, except where they must reach the database, and then in the thread pool.

`SessionDep` opens no connection until the route first uses the session, and releases it as
soon as the route returns, before the response is sent: committed if the route succeeded,
rolled back if it raised. The release runs in a thread of its own, never queued behind
requests that may be waiting for a connection it is about to give back (fastapi#3205).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from api.model_cache import ModelCache
from store.artifacts import ArtifactStore
from store.db import session_factory
from store.settings import Settings, get_settings


async def current_settings(request: Request) -> Settings:
    """The settings the app was built with (a test's override of `get_settings` wins)."""
    override = request.app.dependency_overrides.get(get_settings)
    if override is not None:
        settings: Settings = override()
        return settings
    built: Settings = request.app.state.settings
    return built


SettingsDep = Annotated[Settings, Depends(current_settings)]


def _release(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


async def get_session(settings: SettingsDep) -> AsyncIterator[Session]:
    session = session_factory(settings.resolved_database_url)()
    try:
        yield session
    except BaseException:
        await _finish(session, commit=False)
        raise
    await _finish(session, commit=True)


async def _finish(session: Session, *, commit: bool) -> None:
    if not session.in_transaction():  # never used, or the route committed: nothing is held
        session.close()
        return
    # A limiter of its own: releasing a connection must not wait for a thread.
    await anyio.to_thread.run_sync(
        partial(_release, session, commit), limiter=anyio.CapacityLimiter(1)
    )


async def get_model_cache(request: Request) -> ModelCache:
    cache: ModelCache = request.app.state.model_cache
    return cache


async def get_artifacts(request: Request) -> ArtifactStore:
    artifacts: ArtifactStore = request.app.state.artifacts
    return artifacts


# scope="function": released when the route returns, not after the response is sent.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ModelCacheDep = Annotated[ModelCache, Depends(get_model_cache)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="A retry with the same key answers what the first request created.",
    ),
]
ArtifactsDep = Annotated[ArtifactStore, Depends(get_artifacts)]
