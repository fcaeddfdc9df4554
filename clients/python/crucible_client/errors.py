"""Typed errors: every answer that is not 2xx becomes a `CrucibleError` carrying the server's
JSON error body (`{"code", "message", "field"?, "errors"?, "request_id"}`), so a program
branches on the exception class or on `.code`, never on a message meant for people."""

from __future__ import annotations

from typing import Any

import httpx


class CrucibleError(Exception):
    """An error answer of the API. `status` is the HTTP status, `code` the server's stable
    code (`job_not_found`, `validation_error`, ...), `field` the input at fault, `body` the
    whole JSON error body as sent."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        request_id: str | None = None,
        body: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.request_id = request_id
        self.body: dict[str, Any] = body if body is not None else {}
        self.retry_after = retry_after

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Every invalid input of a validation error (`[{"field", "message"}]`)."""
        return list(self.body.get("errors") or [])


class BadRequest(CrucibleError):
    """400: malformed JSON, control characters."""


class AuthenticationError(CrucibleError):
    """401: no API key, or one that is unknown, revoked or expired."""


class PermissionDenied(CrucibleError):
    """403: the key lacks the scope, or a cross-site request."""


class NotFound(CrucibleError):
    """404: no such job, model, name, dataset or key (another tenant's is not found either)."""


class Conflict(CrucibleError):
    """409: the resource's state forbids it (a finished job, a model not ready, ...)."""


class ValidationError(CrucibleError):
    """422: the input is invalid; `field` and `errors` say where."""


class RateLimited(CrucibleError):
    """429: a quota or the query rate is exhausted; `retry_after` says when waiting helps."""


class ServerUnavailable(CrucibleError):
    """503: overloaded, or a dependency is down; retry after `retry_after` seconds."""


class CrucibleConnectionError(CrucibleError):
    """The API could not be reached, or the connection broke (status 0: no answer)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "connection_error", message)


BY_STATUS: dict[int, type[CrucibleError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    422: ValidationError,
    429: RateLimited,
    503: ServerUnavailable,
}


def retry_after(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (the API sends whole seconds, never a date)."""
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def error_from(response: httpx.Response) -> CrucibleError:
    """The typed error of a non-2xx response, whose body must already be read. A body that
    is not the API's error JSON (a proxy's page) still gives a usable error."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"code": f"http_{response.status_code}", "message": response.text[:500]}
    cls = BY_STATUS.get(response.status_code, CrucibleError)
    return cls(
        response.status_code,
        str(body.get("code") or f"http_{response.status_code}"),
        str(body.get("message") or response.reason_phrase),
        field=body.get("field"),
        request_id=body.get("request_id") or response.headers.get("x-request-id"),
        body=body,
        retry_after=retry_after(response),
    )


def check(response: httpx.Response) -> httpx.Response:
    """`response` if it is 2xx; else raise its typed error."""
    if response.is_success:
        return response
    raise error_from(response)
