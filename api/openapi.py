"""The OpenAPI document declares every status an operation can answer, with the one error
body every error has (`api.errors`), so a generated client can type its errors and a fuzzer
can hold the API to its word.

Which statuses: every operation but the open health probes may answer 401 and 403 (keys and
scopes), 400 (a control character in its path or query), 429 (quotas, the query rate) and 503
(overloaded, the database or the artifact store unavailable); one with parameters or a body
422; with a body 413 (too large) and 415 (not JSON); with path parameters 404; one that
changes state, or names a model, 409. Declaring a status an operation rarely answers is
harmless; answering an undeclared one is a bug the schema fuzz test (tests/api) catches.

`install` then finishes the document FastAPI builds (`finish`), with what FastAPI cannot infer,
so a client generated from it (tests/api/test_openapi_client.py) is typed end to end:

- the job spec (`JobCreate`, validated as one model with a plain `config` object, then the
  algorithm's config by `validate_strictly`) is shown as what it really is, a union
  discriminated on `algorithm`: one schema per registered algorithm, derived from JobCreate's
  own (so a field added to JobCreate shows in all of them), its `config` typed by that
  algorithm's pydantic config, whose `$defs` are hoisted into components (renamed with the
  algorithm's name only where two different schemas share a name); the request body has one
  example per algorithm, its default config;
- every error status answers `ErrorBody`, every body a schema (binary media as binary, the
  readiness probe and heavy query results by their models);
- the job status is one enum (`JobStatusName`), the list filter's included;
- every operation has a one-line summary (the first sentence of its function's docstring
  when the route sets none) and a unique operation id (the function's name, by the app's
  `generate_unique_id_function`, unless the route sets one).
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.utils import create_model_field
from pydantic import BaseModel, Field
from starlette.routing import BaseRoute

import ml
from ml.queries import JSON, QUERIES
from ml.queries.base import never

Document = dict[str, Any]
Schema = dict[str, Any]

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


# -- the finished document ----------------------------------------------------------------
COMPONENTS = "#/components/schemas/"
DEFS = "#/$defs/"  # where pydantic's own schemas point
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
# The store's enum, the type of the list filter `?status=`, is the public one's twin.
TWIN_ENUMS = {"JobStatus": "JobStatusName"}
QUERY_RESULT_OPERATION = "get_query_result"
CREATE_JOB_OPERATION = "create_job"
# A full stop that ends a sentence: the text ends or a capital follows, and no abbreviation
# ("e.g. `dqn`", "(Mnih et al. 2015)") ends there.
SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\bal)(?<!\bvs)\.(?:\s+(?=[A-Z])|\s*$)")


class ReadinessCheck(BaseModel):
    status: Literal["ok", "failed", "timeout"]
    seconds: float
    error: str | None = Field(None, description="What failed: an exception's type, a timeout.")


class Readiness(BaseModel):
    """What /readyz answers when every dependency answers (`api.routes.health`)."""

    status: Literal["ready"]
    checks: dict[str, ReadinessCheck] = Field(description="database, broker and artifacts.")


# Responses whose route answers a `Response` of its own making, by (path, method, status).
RESPONSE_MODELS: dict[tuple[str, str, str], type[BaseModel]] = {
    ("/readyz", "get", "200"): Readiness,
}


def install(app: FastAPI) -> None:
    """Have `app.openapi()` (so /openapi.json, the docs and the fuzz tests) serve FastAPI's
    document finished by `finish`, built on first use and cached as FastAPI caches it."""
    build = app.openapi

    def openapi() -> Document:
        if app.openapi_schema is None:
            try:
                app.openapi_schema = finish(build(), app.routes)
            except Exception:
                app.openapi_schema = None  # build() cached the unfinished one
                raise
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def finish(document: Document, routes: Sequence[BaseRoute]) -> Document:
    """FastAPI's document, completed in place (see the module docstring)."""
    hoisted: dict[str, str] = {}
    summarise(document, routes)
    check_operation_ids(document)
    type_responses(document, hoisted)
    merge_twin_enums(document)
    discriminate_job_spec(document, ml.ALGORITHMS, hoisted)
    return document


def operations(document: Document) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def find_operation(document: Document, operation_id: str) -> dict[str, Any] | None:
    return next(
        (op for _, _, op in operations(document) if op.get("operationId") == operation_id), None
    )


def schemas_of(document: Document) -> dict[str, Schema]:
    return document.setdefault("components", {}).setdefault("schemas", {})  # type: ignore[no-any-return]


# -- summaries and operation ids ----------------------------------------------------------
def first_sentence(docstring: str | None) -> str | None:
    """A docstring's first sentence on one line: its first paragraph up to the first full
    stop, the way a reader skims it."""
    if not docstring:
        return None
    paragraph = " ".join(inspect.cleandoc(docstring).split("\n\n", 1)[0].split())
    sentence = SENTENCE_END.split(paragraph, maxsplit=1)[0]
    return sentence.rstrip(".") or None


def summarise(document: Document, routes: Sequence[BaseRoute]) -> None:
    """Give an operation whose route sets no summary the first sentence of its function's
    docstring, rather than FastAPI's title-cased function name ("Readyz")."""
    paths = document.get("paths", {})
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema or route.summary:
            continue
        summary = first_sentence(route.endpoint.__doc__)
        if summary is None:
            continue
        for method in route.methods or ():
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is not None:
                operation["summary"] = summary


def check_operation_ids(document: Document) -> None:
    """A generated client names its functions by operation id: two alike would shadow each
    other, so a duplicate is a bug to fix before the document is served."""
    counts = Counter(op.get("operationId") for _, _, op in operations(document))
    twins = sorted(str(name) for name, n in counts.items() if n > 1 or name is None)
    if twins:
        raise RuntimeError(f"operation ids must be unique and set: {', '.join(twins)}")


def unique_id(route: APIRoute) -> str:
    """The app's `generate_unique_id_function`: an operation's id is its function's name
    (`create_job`), readable in a generated client; `check_operation_ids` holds them unique."""
    return route.name


# -- responses ------------------------------------------------------------------------------
def binary_schema(media_type: str) -> Schema:
    if media_type.startswith("text/"):
        return {"type": "string"}
    return {"type": "string", "format": "binary"}


def type_responses(document: Document, hoisted: dict[str, str]) -> None:
    """Every response says what its body is: an error status without content the error
    body, a non-JSON media type without a schema binary data, and the routes that make their
    own `Response` the models in `RESPONSE_MODELS` and `type_query_results`. An empty JSON
    schema beside other media types is FastAPI's default for a route that answers only
    those (a stream, a file): it goes."""
    schemas = schemas_of(document)
    error = {JSON: {"schema": {"$ref": f"{COMPONENTS}{ErrorBody.__name__}"}}}
    for path, method, operation in operations(document):
        for status, response in operation.get("responses", {}).items():
            model = RESPONSE_MODELS.get((path, method, status))
            if model is not None:
                ref = hoist(schemas, model.model_json_schema(), owner="", hoisted=hoisted)
                response.setdefault("content", {})[JSON] = {"schema": {"$ref": COMPONENTS + ref}}
            elif status[:1] in "45" and not response.get("content"):
                response["content"] = copy.deepcopy(error)
            content = response.get("content", {})
            if len(content) > 1 and not content.get(JSON, {"schema": True}).get("schema"):
                del content[JSON]  # FastAPI's default next to what the route really answers
            for media_type, entry in content.items():
                if not entry.get("schema") and media_type != JSON:
                    entry["schema"] = binary_schema(media_type)
    type_query_results(document)


def type_query_results(document: Document) -> None:
    """A heavy query's result is the answer of one of the queries that can be heavy, in one
    of their media types; each query's JSON answer is read off its own operation."""
    operation = find_operation(document, QUERY_RESULT_OPERATION)
    if operation is None:
        return
    answers: list[Schema] = []
    media_types: list[str] = []
    for query in QUERIES.values():
        if query.heavy is never:
            continue
        asked = find_operation(document, f"query_{query.name.replace('-', '_')}")
        content = (asked or {}).get("responses", {}).get("200", {}).get("content", {})
        if JSON in content:
            answers.append(content[JSON]["schema"])
        media_types += [m for m in content if m != JSON and m not in media_types]
    if not answers:
        return
    content = {JSON: {"schema": answers[0] if len(answers) == 1 else {"anyOf": answers}}}
    content |= {media: {"schema": binary_schema(media)} for media in media_types}
    response = operation.setdefault("responses", {}).setdefault("200", {})
    response.setdefault("description", "The answer, in the media type the query was asked in.")
    response["content"] = content


def merge_twin_enums(document: Document) -> None:
    """Point every use of a twin enum (same values) at the public one and drop the twin, so
    a client has one job status type."""
    schemas = schemas_of(document)
    for twin, name in TWIN_ENUMS.items():
        if twin not in schemas or name not in schemas:
            continue
        if set(schemas[twin].get("enum", ())) != set(schemas[name].get("enum", ())):
            continue
        del schemas[twin]
        repoint = renamer(COMPONENTS + twin, COMPONENTS + name)
        for part in ("paths", "components"):
            document[part] = map_refs(document[part], repoint)


def renamer(old: str, new: str) -> Callable[[str], str]:
    return lambda ref: new if ref == old else ref


# -- references and hoisting ----------------------------------------------------------------
def map_refs(node: Any, change: Callable[[str], str], in_mapping: bool = False) -> Any:
    """`node` with every reference (a `$ref`, a discriminator's mapping value) changed."""
    if isinstance(node, dict):
        discriminator = "propertyName" in node
        return {
            key: change(value)
            if isinstance(value, str) and (key == "$ref" or in_mapping)
            else map_refs(value, change, in_mapping=discriminator and key == "mapping")
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [map_refs(item, change) for item in node]
    return node


def refs_in(node: Any) -> set[str]:
    found: set[str] = set()

    def note(ref: str) -> str:
        found.add(ref)
        return ref

    map_refs(node, note)
    return found


def closure_key(defs: Mapping[str, Schema], name: str) -> str:
    """What a def means: itself and every def it reaches, so two defs of one name are only
    the same schema when what they point at is the same too."""
    seen: dict[str, Schema] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in defs:
            continue
        seen[current] = defs[current]
        todo += [ref.removeprefix(DEFS) for ref in refs_in(defs[current])]
    return json.dumps(seen, sort_keys=True)


def hoist(
    schemas: dict[str, Schema], schema: Schema, *, owner: str, hoisted: dict[str, str]
) -> str:
    """Put a pydantic model's JSON schema (refs to `#/$defs/...`) and its `$defs` into the
    components; the component name of the schema itself. A def takes its own name unless
    a different schema has it, then `<owner><name>`; `hoisted` remembers what each name
    hoisted so far means, so a def shared by several algorithms is there once."""
    local = dict(schema.get("$defs", {}))
    top = str(schema.get("title", owner or "Schema"))
    local[top] = {key: value for key, value in schema.items() if key != "$defs"}
    names: dict[str, str] = {}
    for name in local:
        key = closure_key(local, name)
        for candidate in (name, f"{owner}{name}"):
            if candidate not in schemas or hoisted.get(candidate) == key:
                names[name] = candidate
                hoisted[candidate] = key
                break
        else:
            raise RuntimeError(f"schema {name!r} of {owner!r} collides with another of its name")

    def moved(ref: str) -> str:
        return COMPONENTS + names[ref.removeprefix(DEFS)] if ref.startswith(DEFS) else ref

    for name, body in local.items():
        hoisted_body = map_refs(body, moved)
        if names[name] != name:  # generators name classes by title: two alike would clash
            hoisted_body["title"] = names[name]
        schemas.setdefault(names[name], hoisted_body)
    return names[top]


# -- the job spec ---------------------------------------------------------------------------
def pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\-]", name))


def example_spec(algorithm: ml.Algorithm[Any]) -> dict[str, Any]:
    """A spec a client can send as it is: the algorithm's default config, every field shown."""
    config = algorithm.config().model_dump(mode="json")
    return {"algorithm": algorithm.name, "config": config, "seed": 0}


def algorithm_spec(
    base: Schema, algorithm: ml.Algorithm[Any], config: Schema, config_name: str
) -> Schema:
    """JobCreate's schema for one algorithm: `algorithm` its name, `config` its config."""
    spec = copy.deepcopy(base)
    properties = spec.setdefault("properties", {})
    properties["algorithm"] = {
        "type": "string",
        "const": algorithm.name,
        "enum": [algorithm.name],
        "title": "Algorithm",
        "description": first_sentence(algorithm.description) or algorithm.name,
    }
    properties["config"] = {
        "$ref": COMPONENTS + config_name,
        "description": f"The {algorithm.name} config (see GET /v1/algorithms/{algorithm.name}).",
    }
    required = set(spec.get("required", ())) | {"algorithm"}
    if config.get("required"):  # no default config then: the client must send one
        required.add("config")
    spec["required"] = sorted(required)
    spec["title"] = f"JobCreate{pascal(algorithm.name)}"
    spec["description"] = f"A {algorithm.name} job. {base.get('description', '')}".strip()
    return spec


def discriminate_job_spec(
    document: Document, algorithms: Mapping[str, ml.Algorithm[Any]], hoisted: dict[str, str]
) -> None:
    """Show the job spec as a union discriminated on `algorithm`, one member per algorithm,
    with an example each. Only the document changes: the route still validates JobCreate,
    then the config through `validate_strictly`, for its precise messages and field paths."""
    operation = find_operation(document, CREATE_JOB_OPERATION)
    if operation is None or not algorithms:
        return
    body = operation["requestBody"]["content"][JSON]
    name = body["schema"]["$ref"].removeprefix(COMPONENTS)
    schemas = schemas_of(document)
    base = schemas[name]
    mapping: dict[str, str] = {}
    for algorithm in algorithms.values():
        config = algorithm.config.model_json_schema()
        owner = pascal(algorithm.name)
        config_name = hoist(schemas, config, owner=owner, hoisted=hoisted)
        spec = algorithm_spec(base, algorithm, config, config_name)
        if spec["title"] in schemas:
            raise RuntimeError(f"{spec['title']} is the name of another schema")
        schemas[spec["title"]] = spec
        mapping[algorithm.name] = COMPONENTS + spec["title"]
    schemas[name] = {
        "title": name,
        "description": "A job spec: the members differ by `algorithm`, which says what "
        "`config` is (see GET /v1/algorithms).",
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "algorithm", "mapping": mapping},
    }
    body["examples"] = {
        algorithm.name: {
            "summary": f"{algorithm.name} with its default config",
            "description": first_sentence(algorithm.description) or algorithm.name,
            "value": example_spec(algorithm),
        }
        for algorithm in algorithms.values()
    } | body.get("examples", {})
