"""Every error the API returns has one JSON shape: `{"code", "message", "field"?, "errors"?,
"request_id"}`.

`code` is stable (clients branch on it), `message` is for people, `field` points at the
failing input for validation errors, `request_id` is the `X-Request-ID` of the exchange (see
`api.middleware.RequestId`), also in the server's log lines about it. A message quotes what
the client sent through `store.models.shown`, never whole, and is at most
`MAX_MESSAGE_CHARS` long (a field name from a client's key, `ECHO_CHARS`); a 5xx
names no server path and no library's own words (those go to the log). Routes raise
`ApiError`; `ml` errors and pydantic validation errors are translated here, so no client
input can produce a 500. A database that cannot be reached is 503 `database_unavailable` with
Retry-After, like any other dependency that is down; it is not the client's fault, and
retrying is right.

The middlewares that guard the app as a whole are in `api.middleware`; request bodies are
parsed and validated strictly by `api.strict_input`.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from ml.core.errors import ArtifactError, MLError
from store.db import database_unreachable

log = logging.getLogger(__name__)

# The current request's id, set by `api.middleware.RequestId` for everything that runs inside
# it (handlers, routes in the thread pool, the other middlewares).
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
ECHO_CHARS = 64
MAX_MESSAGE_CHARS = 500
MAX_ERRORS = 20


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.errors = errors
        self.headers = headers


def error_body(
    code: str,
    message: str,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": shortened(message)}
    if field is not None:
        body["field"] = field
    if errors:
        body["errors"] = errors
    request_id = REQUEST_ID.get()
    if request_id is not None:
        body["request_id"] = request_id
    return body


def shortened(message: str) -> str:
    """A backstop for messages that quote input uncut (pydantic's, a validator's)."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 1] + "…"


def truncated(text: str, limit: int = ECHO_CHARS) -> str:
    """`text`, cut after `limit` characters."""
    return text if len(text) <= limit else text[:limit] + "…"


def dotted(loc: tuple[Any, ...] | list[Any], prefix: str = "") -> str:
    # A part can be a key the client chose, as long as it likes.
    parts = [truncated(str(p)) for p in loc if p not in ("body", "query", "path")]
    path = ".".join(parts)
    return f"{prefix}.{path}" if prefix and path else (prefix or path)


def client_path(loc: tuple[Any, ...] | list[Any], body: Any) -> list[Any]:
    """pydantic's location as the client's JSON path: pydantic adds the tag or type of the
    union member it tried (`config.env.grid.slip` for the client's `config.env.slip`), which
    names nothing the client sent. Walking the body along the location keeps the keys and
    indices it holds and drops the rest; past the body's end (a missing field) the rest is
    kept as it is."""
    path: list[Any] = []
    node = body
    parts = [p for p in loc if p not in ("body", "query", "path")]
    for i, part in enumerate(parts):
        if _holds(node, part):
            node = node[part]
            path.append(part)
        elif i + 1 < len(parts) and (_holds(node, parts[i + 1]) or _is_tag(node, part)):
            continue  # a union member's tag or type, not in the client's path
        else:  # a missing field, or past what the client sent: as pydantic says it
            path.extend(parts[i:])
            break
    return path


# The names pydantic gives a union's members of plain types, as it puts them in a location.
PLAIN_TYPES = frozenset({"int", "float", "str", "bool", "list", "dict", "none", "tuple"})


def _is_tag(node: Any, part: Any) -> bool:
    """Whether `part` is a union member's name rather than a key of `node`: the value of the
    client's discriminator (`"grid"` in `{"kind": "grid"}`), a plain type's name, or a
    validator's description (`function-after[...]`, `list[int]`)."""
    if not isinstance(part, str) or _holds(node, part):
        return False
    if isinstance(node, dict) and part in [v for v in node.values() if isinstance(v, str)]:
        return True
    return part in PLAIN_TYPES or "[" in part


def _holds(node: Any, part: Any) -> bool:
    """Whether the JSON value `node` has a key or index `part`."""
    if isinstance(node, dict):
        return part in node
    if isinstance(node, list):
        return isinstance(part, int) and 0 <= part < len(node)
    return False


def validation_errors(
    errors: list[Any], prefix: str = "", body: Any = None
) -> list[dict[str, Any]]:
    def where(e: Any) -> str:
        loc = e.get("loc", ())
        return dotted(client_path(loc, body) if body is not None else loc, prefix)

    return [{"field": where(e), "message": e.get("msg", "invalid")} for e in errors[:MAX_ERRORS]]


def from_validation(errors: list[Any], prefix: str = "", body: Any = None) -> ApiError:
    """The 422 for pydantic's errors: the first in `message`, up to `MAX_ERRORS` in `errors`
    (a batch of 4,096 bad rows is not answered with 4,096 entries), each `field` the path in
    the client's `body` when it is given (`client_path`)."""
    items = validation_errors(errors, prefix, body)
    field = str(items[0]["field"]) if items else (prefix or None)
    detail = str(items[0]["message"]) if items else "invalid input"
    message = f"{field}: {detail}" if field else detail
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return ApiError(422, "validation_error", message, field=field, errors=items)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.field, exc.errors),
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) for e in errors):
            # An empty body: say so, rather than "Field required" with no field to point at.
            err = ApiError(422, "body_required", "the request needs a JSON body", field="body")
        else:
            err = from_validation(errors, body=exc.body)
        return JSONResponse(
            error_body(err.code, err.message, err.field, err.errors), status_code=422
        )

    @app.exception_handler(MLError)
    async def _ml_error(_: Request, exc: MLError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.field), status_code=422)

    @app.exception_handler(ArtifactError)
    async def _artifact_error(_: Request, exc: ArtifactError) -> JSONResponse:
        # The artifact store failed us (unreachable, refused, a file gone): not the client's
        # fault, and worth retrying. Routes that read a client's file map their own errors.
        # The detail (an endpoint, a local path, boto's words) is for the log only.
        log.warning("artifact store (request %s): %s", REQUEST_ID.get(), exc.message)
        return JSONResponse(
            error_body(
                "artifact_store_unavailable",
                "the artifact store is unavailable right now; retry shortly",
            ),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(SQLAlchemyError)
    async def _database_error(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        if not database_unreachable(exc):
            return internal_error(request.scope, exc)
        first_line = str(exc).split("\n", 1)[0]
        log.warning("database unavailable (request %s): %s", REQUEST_ID.get(), first_line)
        return JSONResponse(
            error_body(
                "database_unavailable", "the database cannot be reached right now; retry shortly"
            ),
            status_code=503,
            headers={"Retry-After": DATABASE_RETRY_AFTER},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 406: "not_acceptable"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return internal_error(request.scope, exc)  # what `InternalErrors` did not catch


DATABASE_RETRY_AFTER = "2"


def internal_error(scope: Scope, exc: BaseException) -> JSONResponse:
    """500 `internal_error`, logged, with `Connection: close`: whatever state the connection
    is in, the client opens a fresh one for its next request."""
    log.error(
        "unhandled error in %s %s (request %s)",
        scope.get("method"),
        scope.get("path"),
        REQUEST_ID.get(),
        exc_info=exc,
    )
    return JSONResponse(
        error_body("internal_error", "an internal error occurred; it has been logged"),
        status_code=500,
        headers={"Connection": "close"},
    )
