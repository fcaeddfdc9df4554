"""`GET /metrics`: the service's figures in Prometheus's text format (`api.prometheus`).

The figures span every tenant, so when keys are required it takes the `admin` scope (a
Prometheus scrape sends the key as a bearer token); a deployment running open answers it to
anyone who can reach the API, as it does everything else.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.auth import AnyCaller, Scope
from api.deps import ModelCacheDep, SessionDep, SettingsDep
from api.errors import ApiError
from api.prometheus import exposition
from api.strict_input import StrictRoute
from store.figures import figures
from store.tables import utcnow

router = APIRouter(tags=["operations"], route_class=StrictRoute)
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


@router.get(
    "/metrics",
    summary="The service's figures for Prometheus",
    operation_id="get_prometheus_metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
def prometheus_metrics(
    caller: AnyCaller, settings: SettingsDep, session: SessionDep, cache: ModelCacheDep
) -> Response:
    if settings.auth_required and Scope.admin not in caller.scopes:
        raise ApiError(
            403, "missing_scope", "the service's figures span every tenant: an admin key reads them"
        )
    body = exposition(figures(session, utcnow(), settings.sweep_seconds), cache)
    return Response(body, media_type=TEXT_FORMAT)
