"""The OpenAPI document as a client generator and a reader see it (`api.openapi.finish`): the
job spec as a union discriminated on `algorithm`, an example per algorithm and per query, one
status enum, typed responses, a summary and a readable, unique id on every operation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel

import ml
from api.openapi import COMPONENTS, first_sentence, hoist, install, unique_id
from api.schemas import JobCreate, JobStatusName
from ml.queries import QUERIES
from tests.api.conftest import Api

READABLE_ID = re.compile(r"^[a-z][a-z0-9_]*$")


@pytest.fixture(scope="module")
def document(shared_api: Api) -> dict[str, Any]:
    """The document as served."""
    return dict(shared_api.client.get("/openapi.json").json())


def schema(document: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith(COMPONENTS), ref
    return dict(document["components"]["schemas"][ref.removeprefix(COMPONENTS)])


def every_operation(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def operation(document: dict[str, Any], operation_id: str) -> dict[str, Any]:
    return next(op for _, op in every_operation(document) if op["operationId"] == operation_id)


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def spec_union(document: dict[str, Any]) -> dict[str, Any]:
    body = operation(document, "create_job")["requestBody"]["content"]["application/json"]
    return schema(document, body["schema"]["$ref"])


# -- the job spec --------------------------------------------------------------------------
def test_the_job_spec_is_a_union_discriminated_on_algorithm(document: dict[str, Any]) -> None:
    union = spec_union(document)
    mapping = union["discriminator"]["mapping"]
    assert union["discriminator"]["propertyName"] == "algorithm"
    assert set(mapping) == set(ml.ALGORITHMS)
    assert sorted(m["$ref"] for m in union["oneOf"]) == sorted(mapping.values())
    for name, ref in mapping.items():
        member = schema(document, ref)
        assert member["properties"]["algorithm"]["const"] == name
        assert member["properties"]["algorithm"]["enum"] == [name]
        assert "algorithm" in member["required"]
        # Every field of JobCreate flows through, so a new one needs no change here.
        assert set(member["properties"]) == set(JobCreate.model_fields)
        config = schema(document, member["properties"]["config"]["$ref"])
        assert set(config["properties"]) == set(ml.ALGORITHMS[name].config.model_fields)
        assert config["additionalProperties"] is False


def test_every_reference_resolves_and_no_pydantic_defs_are_left(document: dict[str, Any]) -> None:
    found = set(refs(document))
    assert not [r for r in found if not r.startswith(COMPONENTS)]
    missing = {
        r for r in found if r.removeprefix(COMPONENTS) not in document["components"]["schemas"]
    }
    assert not missing
    titles = [s.get("title") for s in document["components"]["schemas"].values()]
    assert len(titles) == len(set(titles)), "generators name classes by title"


def test_every_algorithm_has_an_example_the_api_accepts(document: dict[str, Any], api: Api) -> None:
    body = operation(document, "create_job")["requestBody"]["content"]["application/json"]
    examples = body["examples"]
    assert set(examples) == set(ml.ALGORITHMS)
    for name, example in examples.items():
        assert example["summary"]
        assert example["value"]["algorithm"] == name
        r = api.client.post("/v1/jobs", json=example["value"])
        assert r.status_code == 202, (name, r.text)


def test_the_route_still_validates_with_precise_fields(api: Api) -> None:
    """The union is the document's: the API still names the config field at fault."""
    body = api.error(
        "POST",
        "/v1/jobs",
        422,
        json={"algorithm": "value_iteration", "config": {"discount": "0.9"}},
    )
    assert body["field"] == "config.discount"


def test_colliding_definitions_are_prefixed_and_shared_ones_kept_once() -> None:
    class Policy(BaseModel):
        kind: str

    class A(BaseModel):
        policy: Policy

    same = A.model_json_schema()
    other = same | {"$defs": {"Policy": {"type": "object", "title": "Policy"}}}
    schemas: dict[str, Any] = {}
    hoisted: dict[str, str] = {}
    assert hoist(schemas, same, owner="First", hoisted=hoisted) == "A"
    assert hoist(schemas, dict(same), owner="Second", hoisted=hoisted) == "A"
    assert hoist(schemas, other, owner="Third", hoisted=hoisted) == "ThirdA"
    assert set(schemas) == {"A", "Policy", "ThirdA", "ThirdPolicy"}
    assert schemas["ThirdA"]["properties"]["policy"]["$ref"] == f"{COMPONENTS}ThirdPolicy"
    assert schemas["ThirdPolicy"]["title"] == "ThirdPolicy"


# -- statuses, responses, examples ------------------------------------------------------------
def test_the_job_status_is_one_enum_of_five(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert set(schemas["JobStatusName"]["enum"]) == {s.value for s in JobStatusName}
    assert len(JobStatusName) == 5
    assert "JobStatus" not in schemas
    assert schemas["JobPublic"]["properties"]["status"]["$ref"] == f"{COMPONENTS}JobStatusName"
    (status,) = [p for p in operation(document, "list_jobs")["parameters"] if p["name"] == "status"]
    assert f"{COMPONENTS}JobStatusName" in set(refs(status))


def test_every_response_is_typed(document: dict[str, Any]) -> None:
    for where, op in every_operation(document):
        for status, response in op["responses"].items():
            content = response.get("content", {})
            if status == "204":
                assert not content, where
                continue
            assert content, (where, status)
            assert all(entry.get("schema") for entry in content.values()), (where, status)
            if status[0] in "45":
                assert content["application/json"]["schema"]["$ref"].endswith("/ErrorBody")


def test_query_examples_appear_on_their_operations(document: dict[str, Any]) -> None:
    for query in QUERIES.values():
        op = operation(document, f"query_{query.name.replace('-', '_')}")
        shown = op["requestBody"]["content"]["application/json"].get("examples", {})
        assert [e["value"] for e in shown.values()] == list(query.examples), query.name


# -- summaries and operation ids ---------------------------------------------------------------
def test_every_operation_has_a_summary_and_a_unique_readable_id(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, op in every_operation(document)]
    assert len(ids) == len(set(ids))
    assert [i for i in ids if not READABLE_ID.match(i)] == []
    for expected in ("list_jobs", "create_job", "get_job", "cancel_job", "query_samples"):
        assert expected in ids
    assert "readyz" in ids and "healthz" in ids
    for where, op in every_operation(document):
        assert op["summary"] and "\n" not in op["summary"], where


def toy_app() -> FastAPI:
    app = FastAPI(generate_unique_id_function=unique_id)

    @app.get("/things")
    def list_things() -> list[str]:
        """Every thing there is. The rest of the docstring says why,
        at length."""
        return []

    return app


def test_a_route_without_summary_gets_its_docstrings_first_sentence() -> None:
    app = toy_app()
    install(app)
    op = app.openapi()["paths"]["/things"]["get"]
    assert op["operationId"] == "list_things"
    assert op["summary"] == "Every thing there is"


def test_a_duplicate_operation_id_is_refused() -> None:
    app = toy_app()

    @app.post("/things")
    def list_things() -> None:  # the same function name, by mistake
        return None

    install(app)
    with pytest.raises(RuntimeError, match="list_things"), pytest.warns(UserWarning):
        app.openapi()


@pytest.mark.parametrize(
    ("docstring", "expected"),
    [
        (None, None),
        ("Describe a job.", "Describe a job"),
        ("Queue a job (e.g. `dqn`). Then more.\n\nDetails.", "Queue a job (e.g. `dqn`)"),
        ("Spans\n    two lines. Second.", "Spans two lines"),
        (
            "Deep Q-Network (Mnih et al. 2015) with replay. More.",
            "Deep Q-Network (Mnih et al. 2015) with replay",
        ),
    ],
)
def test_first_sentence(docstring: str | None, expected: str | None) -> None:
    assert first_sentence(docstring) == expected
