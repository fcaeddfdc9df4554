"""Every error the API returns has one JSON shape: `{"code", "message", "field"?, "errors"?}`.

`code` is stable (clients branch on it), `message` is for people, `field` points at the
failing input for validation errors. Routes raise `ApiError`; `ml` errors and pydantic
validation errors are translated here, so no client input can produce a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ml.core.errors import ArtifactError, MLError

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.errors = errors


def error_body(
    code: str,
    message: str,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    if errors:
        body["errors"] = errors
    return body


def dotted(loc: tuple[Any, ...] | list[Any], prefix: str = "") -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    # pydantic adds the union member's tag/type to the location; it only confuses people.
    path = ".".join(parts)
    return f"{prefix}.{path}" if prefix and path else (prefix or path)


def validation_errors(errors: list[Any], prefix: str = "") -> list[dict[str, Any]]:
    return [
        {"field": dotted(e.get("loc", ()), prefix), "message": e.get("msg", "invalid")}
        for e in errors
    ]


def from_validation(errors: list[Any], prefix: str = "") -> ApiError:
    items = validation_errors(errors, prefix)
    field = str(items[0]["field"]) if items else (prefix or None)
    detail = str(items[0]["message"]) if items else "invalid input"
    message = f"{field}: {detail}" if field else detail
    if len(items) > 1:
        message += f" (and {len(items) - 1} more)"
    return ApiError(422, "validation_error", message, field=field, errors=items)


MULTIPART_SLACK = 64 * 1024  # room for a multipart envelope around an upload


def limit_body_size(app: FastAPI, max_bytes: int, max_upload_bytes: int) -> None:
    """Refuse a declared body larger than the limit before reading it: `max_bytes` for JSON,
    `max_upload_bytes` for multipart uploads (whose parts are counted again as they are read,
    see `api.uploads`)."""

    @app.middleware("http")
    async def _limit(request: Request, call_next: Any) -> Any:
        declared = request.headers.get("content-length", "")
        multipart = request.headers.get("content-type", "").startswith("multipart/form-data")
        limit = max_upload_bytes + MULTIPART_SLACK if multipart else max_bytes
        if declared.isdigit() and int(declared) > limit:
            return JSONResponse(
                error_body(
                    "request_too_large",
                    f"request body of {declared} bytes is over the limit of {limit}",
                ),
                status_code=413,
            )
        return await call_next(request)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.field, exc.errors), status_code=exc.status
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        err = from_validation(list(exc.errors()))
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
        log.warning("artifact store: %s", exc.message)
        return JSONResponse(
            error_body("artifact_store_unavailable", exc.message),
            status_code=503,
            headers={"Retry-After": "5"},
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
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(
            error_body("internal_error", "an internal error occurred; it has been logged"),
            status_code=500,
        )
