"""Strict input: unknown query parameters, and what Python's JSON parser lets through and
the API must not.

Every route refuses a query parameter it does not declare with 422 `unknown_parameter`: a
misspelt filter (`?stauts=failed`) would otherwise be ignored silently and answer everything.

Python's `json` accepts `NaN`, `Infinity` and `-Infinity` (not JSON), turns `1e999` into
infinity, recurses as deep as the interpreter lets it, and hands over strings holding NUL or
lone surrogates, which PostgreSQL cannot store. `StrictRoute`, the route class of every
router, answers all of that before FastAPI sees the body:

- the body is parsed once, by `loads`: 400 `invalid_json` for bytes that are not UTF-8, text
  that is not JSON (`NaN` and `Infinity` included), a number too large for a float, and
  arrays and objects nested deeper than `MAX_DEPTH`; 422 `invalid_characters`, naming the
  field, for a string (or key) holding NUL or a lone surrogate;
- a route that takes JSON answers a body of another Content-Type with 415
  `unsupported_media_type`, rather than FastAPI's "input should be a valid dictionary".

Types are the models' business: request models are strict (`api.schemas.Strict`,
`ml.queries.base.REQUEST`), so `"5"` and `true` are no numbers, and FastAPI still validates
them after the dependencies (a caller without a key hears 401, not what its body lacks). A
job's config, a plain object in the spec, is validated with `validate_strictly`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from api.errors import ApiError, dotted
from store.models import shown

MAX_DEPTH = 64
JSON_MEDIA = "application/json"

# A JSON string (valid JSON is assumed: `loads` has parsed it), written to run in linear time.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
# Outside strings valid JSON is ASCII: deleting every other ASCII character leaves brackets.
_ONLY_BRACKETS = {i: None for i in range(128) if chr(i) not in "[]{}"}
_INNERMOST = re.compile(r"\[\]|\{\}")
# Escapes that decode to NUL or to a surrogate (a pair is fine: it decodes to one character).
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")

Model = TypeVar("Model", bound=BaseModel)


class InvalidJSON(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(400, "invalid_json", message)


class _NotJSON(ValueError):
    pass


def _constant(name: str) -> NoReturn:
    raise _NotJSON(f"{name} is not a JSON number: send a number or null")


def _finite(text: str) -> float:
    """`float`, but a number past the largest float is refused, not read as infinity. It
    makes a body of numbers 40% slower to parse (15 ms a megabyte); a pattern that spots
    the numbers it could refuse costs more than that."""
    value = float(text)
    if math.isinf(value):
        raise _NotJSON(f"the number {shown(text, 32)} is too large for a 64-bit float")
    return value


def loads(body: bytes) -> Any:
    """A request body parsed as strict JSON, or the `ApiError` that says what is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJSON(f"the body is not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise InvalidJSON(f"the body is not valid JSON: {exc.msg} at {where}") from None
    except _NotJSON as exc:
        raise InvalidJSON(str(exc)) from None
    except RecursionError:
        raise InvalidJSON(too_deep_message()) from None
    except ValueError:  # an integer of more than 4,300 digits (sys.int_info)
        raise InvalidJSON("the body holds a number with too many digits") from None
    if nesting_exceeds(text, MAX_DEPTH):
        raise InvalidJSON(too_deep_message())
    if _SUSPECT_ESCAPE.search(text):
        check_strings(value)
    return value


def too_deep_message() -> str:
    return f"the body nests arrays and objects more than {MAX_DEPTH} levels deep"


def nesting_exceeds(text: str, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` deep in the JSON `text`. Each pass
    drops the innermost empty pairs of the brackets left once strings are gone: C-speed
    string operations, a few milliseconds a megabyte, where walking the parsed value in
    Python takes thirty."""
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _STRING.sub("", text).translate(_ONLY_BRACKETS)
    for _ in range(limit):
        brackets = _INNERMOST.sub("", brackets)
        if not brackets:
            return False
    return True


def check_strings(value: Any) -> None:
    """Refuse the first string or key found holding NUL or a lone surrogate, naming where."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            _check_string(node, path)
        elif isinstance(node, dict):
            for key in node:
                _check_string(key, (*path, key))
            stack.extend(((*path, k), v) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(node))))


def _check_string(text: str, path: tuple[str | int, ...]) -> None:
    found = _BAD_CHARACTER.search(text)
    if found is None:
        return
    what = "NUL (\\u0000)" if found.group() == "\x00" else "a lone surrogate"
    field = dotted(path) or None
    message = f"{field or 'the body'}: a string holds {what}, which no field accepts"
    raise ApiError(422, "invalid_characters", message, field=field)


def is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == JSON_MEDIA or (media.startswith("application/") and media.endswith("+json"))


def validate_strictly(model: type[Model], data: Any) -> Model:
    """`data` (parsed JSON) validated as JSON, in pydantic's strict JSON mode, or a
    `ValidationError` as from `model_validate`: `"5"` and `true` are no numbers, while `1` is
    a fine float, a string names an enum member and an array fills a tuple, as JSON has it.
    For a job's config, which the spec carries as a plain object, and whose model (the
    algorithm's, in `ml`) stays lax for notebooks."""
    return model.model_validate_json(json.dumps(data), strict=True)


class StrictJSONRequest(Request):
    """A request whose `json()` is `loads`, parsed once."""

    _strict_json: Any

    async def json(self) -> Any:
        if not hasattr(self, "_strict_json"):
            self._strict_json = loads(await self.body())
        return self._strict_json


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class StrictRoute(APIRoute):
    """The route class of every router (`APIRouter(..., route_class=StrictRoute)`):
    see the module docstring. Routes without a body, or with a form (uploads), are as
    FastAPI makes them."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        known = query_parameters(self.dependant)
        field = self.body_field
        takes_json = field is not None and not isinstance(field.field_info, params.Form)

        async def strict_handler(request: Request) -> Response:
            check_query_parameters(request, known)
            if not takes_json:
                return await handler(request)
            request = StrictJSONRequest(request.scope, request.receive)
            try:
                body = await request.body()
            except ClientDisconnect:  # nobody to answer; as FastAPI has it, not a 500
                raise HTTPException(400, "the client left before sending its body") from None
            if body:  # FastAPI leaves an empty body to the model's defaults
                content_type = request.headers.get("content-type")
                if not is_json_media_type(content_type):
                    raise unsupported_media_type(content_type)
                await request.json()  # parsed here, outside FastAPI's catch-all for bodies
            return await handler(request)

        return strict_handler


def query_parameters(dependant: Dependant) -> frozenset[str]:
    """The names of the query parameters a route and its dependencies declare."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= query_parameters(sub)
    return frozenset(names)


def check_query_parameters(request: Request, known: frozenset[str]) -> None:
    for name in request.query_params:
        if name not in known:
            takes = ", ".join(sorted(known)) or "none"
            raise ApiError(
                422,
                "unknown_parameter",
                f"unknown query parameter {shown(name)}; this operation takes: {takes}",
                field=shown(name, limit=64)[1:-1],
            )


def unsupported_media_type(content_type: str | None) -> ApiError:
    sent = f"not {shown(content_type)}" if content_type else "and the request has none"
    return ApiError(
        415,
        "unsupported_media_type",
        f"this endpoint takes a JSON body (Content-Type: {JSON_MEDIA}), {sent}",
        field="content-type",
    )
