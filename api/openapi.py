"""The OpenAPI document declares every status an operation can answer, with the one error
body every error has (`api.errors`), so a generated client can type its errors and a fuzzer
can hold the API to its word.

Which statuses: every operation but the open health probes may answer 401 and 403 (keys and
scopes), 400 (a control character in its path or query), 429 (quotas, the query rate) and 503
(overloaded, the database or the artifact store unavailable); one with parameters or a body
422; with a body 413 (too large) and 415 (not JSON); with path parameters 404; one that
changes state, or names a model, 409. Declaring a status an operation rarely answers is
harmless; answering an undeclared one is a bug the schema fuzz test (tests/api) catches.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from fastapi.utils import create_model_field
from pydantic import BaseModel, Field

OPEN_PATHS = frozenset({"/healthz", "/readyz"})

DESCRIPTIONS = {
    400: "Bad request: control characters in the path or query, malformed JSON.",
    401: "No API key, or one that is unknown, revoked or expired.",
    403: "The key lacks the scope this operation needs, or a cross-site request.",
    404: "Not found (another tenant's resource is not found either).",
    409: "Conflict with the resource's state.",
    413: "The body is larger than the limit.",
    415: "The body is not JSON.",
    422: "The input is invalid; `field` and `errors` say where.",
    429: "A quota or the query rate is exhausted; see Retry-After when waiting helps.",
    503: "Overloaded, or a dependency is down; retry after Retry-After.",
}


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error response."""

    code: str = Field(description="Stable, for programs: branch on it.")
    message: str = Field(description="For people.")
    field: str | None = Field(None, description="The input at fault, for validation errors.")
    errors: list[FieldError] | None = Field(None, description="Every invalid input.")
    request_id: str | None = Field(
        None, description="Also in the X-Request-ID header and the server's log."
    )


def statuses(route: APIRoute) -> set[int]:
    if route.path in OPEN_PATHS:
        return {400, 503}
    found = {400, 401, 403, 429, 503}
    has_path_params = bool(route.dependant.path_params) or "{" in route.path
    if has_path_params:
        found.add(404)
    if route.body_field is not None:
        found |= {413, 415, 422}
    if route.dependant.query_params or route.dependant.header_params or has_path_params:
        found.add(422)
    if (route.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"} or "{model}" in route.path:
        found.add(409)
    return found


def declare_errors(router: APIRouter) -> APIRouter:
    """Add the error statuses to the responses of every route of `router` (an operation's
    own description of a status wins), before the app includes it."""
    for route in router.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        declared: dict[int | str, Any] = dict(route.responses)
        for status in sorted(statuses(route)):
            entry = dict(declared.get(status, {}))
            entry.setdefault("description", DESCRIPTIONS[status])
            entry.setdefault("model", ErrorBody)
            declared[status] = entry
            if status not in route.response_fields:
                route.response_fields[status] = create_model_field(
                    name=f"Response_{status}_{route.unique_id}",
                    type_=ErrorBody,
                    mode="serialization",
                )
        route.responses = declared
    return router
