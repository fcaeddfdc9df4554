"""The model a path's `{model}` names, among the caller's tenant's models: a model id, the id
of the job that made it, `name@alias` or `name@N`. Another tenant's model answers 404, as a
missing one does."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.auth import Caller, authenticate
from api.deps import current_settings
from api.errors import ApiError
from api.model_cache import ModelRows
from store import models
from store.db import session_factory, session_scope
from store.tables import TrainedModelRow

ModelReference = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        description="A model id, the id of the job that made it, name@alias or name@N.",
    ),
]


def resolve_model(session: Session, reference: str, tenant: str) -> TrainedModelRow:
    try:
        return models.resolve(session, reference, tenant=tenant)
    except models.ModelNotReady as exc:
        raise ApiError(409, "model_not_ready", str(exc), field="model") from None
    except models.ModelNotFound as exc:
        raise ApiError(404, "model_not_found", exc.message, field="model") from None


def _resolve_in_own_session(url: str, reference: str, tenant: str) -> TrainedModelRow:
    with session_scope(session_factory(url)) as session:
        return resolve_model(session, reference, tenant)


async def resolved_model(
    model: ModelReference,
    request: Request,
    caller: Annotated[Caller, Depends(authenticate)],
) -> TrainedModelRow:
    """`resolve_model` in a transaction of its own, closed before the route runs: a query
    may compute for a while, and must not hold a pooled connection meanwhile. A reference that
    always names the same model (its id, its job's id) is answered from memory for a while."""
    rows: ModelRows = request.app.state.model_rows
    row = rows.get(model)
    if row is None:
        url = (await current_settings(request)).resolved_database_url
        row = await run_in_threadpool(_resolve_in_own_session, url, model, caller.tenant)
        rows.remember(model, row)
    elif row.tenant != caller.tenant:
        raise ApiError(
            404, "model_not_found", f"no model with id {models.shown(model)}", field="model"
        )
    return row


ResolvedModelDep = Annotated[TrainedModelRow, Depends(resolved_model)]
