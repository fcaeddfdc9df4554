"""The client's own types against the server's OpenAPI document (`create_app().openapi()`):
every field of a client model exists in the schema of the operation it is used for, with a
type that can hold what the server sends (answers) or that the server accepts (bodies), and
is required exactly when the server requires it. Nested models are checked the same way.

The client imports nothing of the server, so this test is what keeps the two in step.
"""

from __future__ import annotations

from typing import Any

import pytest
from crucible_client import events, schemas
from crucible_client.schemas import Page
from pydantic import BaseModel, TypeAdapter

from tests.api.conftest import Api

# (operation id, status) -> the client type its answer is read as.
ANSWERS: dict[tuple[str, str], Any] = {
    ("list_algorithms", "200"): schemas.Algorithms,
    ("list_environments", "200"): schemas.Environments,
    ("create_job", "202"): schemas.Job,
    ("get_job", "200"): schemas.Job,
    ("list_jobs", "200"): Page[schemas.Job],
    ("cancel_job", "202"): schemas.Job,
    ("clone_job", "202"): schemas.Job,
    ("resume_job", "202"): schemas.Job,
    ("continue_model", "202"): schemas.Job,
    ("get_job_metrics", "200"): schemas.Metrics,
    ("get_job_logs", "200"): schemas.Logs,
    ("list_models", "200"): Page[schemas.TrainedModel],
    ("get_model", "200"): schemas.TrainedModel,
    ("import_model", "201"): schemas.TrainedModel,
    ("create_model_version", "201"): schemas.ModelVersion,
    ("set_model_alias", "200"): schemas.Alias,
    ("get_registered_name", "200"): schemas.RegisteredName,
    ("list_registered_names", "200"): Page[schemas.NameSummary],
    ("upload_dataset", "201"): schemas.Dataset,
    ("list_datasets", "200"): Page[schemas.Dataset],
    ("get_dataset", "200"): schemas.Dataset,
    ("create_key", "201"): schemas.KeyCreated,
    ("list_keys", "200"): Page[schemas.Key],
    ("revoke_key", "200"): schemas.Key,
    ("get_current_key", "200"): schemas.Caller,
    ("query_q_values", "202"): schemas.QueryPending,
}
# operation id -> the client model of its JSON body.
BODIES: dict[str, type[BaseModel]] = {
    "create_job": schemas.JobSpec,
    "clone_job": schemas.CloneSpec,
    "continue_model": schemas.ContinueSpec,
    "create_model_version": schemas.VersionSpec,
    "set_model_alias": schemas.AliasSpec,
    "create_key": schemas.KeySpec,
}
# The events' data are documented in prose (SSE has no schema), but `end` carries a job and
# a followed log's `log` a record: those are checked through their components.
COMPONENTS: dict[str, type[BaseModel]] = {"JobPublic": schemas.Job}
COMPONENT_FIELDS = {"JobLogRecord": schemas.LogRecord}

Schema = dict[str, Any]


class Doc:
    """A JSON schema document whose `$ref`s resolve (the OpenAPI one, or a client type's)."""

    def __init__(self, root: Schema) -> None:
        self.root = root

    def alternatives(self, schema: Schema) -> list[Schema]:
        """The schema's members after resolving refs and flattening unions."""
        while "$ref" in schema:
            node: Any = self.root
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part]
            schema = node
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return [a for s in schema[key] for a in self.alternatives(s)]
        if len(schema.get("allOf", [])) == 1:
            return self.alternatives(schema["allOf"][0])
        return [schema]


def client_doc(annotation: Any) -> tuple[Doc, Schema]:
    schema = TypeAdapter(annotation).json_schema(ref_template="#/$defs/{model}")
    return Doc(schema), schema


def kind(schema: Schema) -> str | None:
    """The JSON type of a resolved member; None for 'anything'."""
    if "type" in schema:
        return str(schema["type"])
    if "const" in schema or "enum" in schema:
        return "string"
    if "properties" in schema:
        return "object"
    return None


def is_model(schema: Schema) -> bool:
    return "properties" in schema


def fits(value: Schema, value_doc: Doc, holder: Schema, holder_doc: Doc, where: str) -> None:
    """Every value `value` describes is one `holder` describes (integers are numbers)."""
    holders = holder_doc.alternatives(holder)
    if any(kind(h) is None for h in holders):
        return
    for member in value_doc.alternatives(value):
        found = kind(member)
        assert found is not None, f"{where}: untyped where the other side is typed"
        same = [h for h in holders if kind(h) == found or (found, kind(h)) == ("integer", "number")]
        assert same, f"{where}: {found} does not fit {[kind(h) for h in holders]}"
        if found == "array":
            fits(
                member.get("items", {}),
                value_doc,
                same[0].get("items", {}),
                holder_doc,
                where + "[]",
            )
        elif found == "object" and is_model(member) and is_model(same[0]):
            compare_fields(member, value_doc, same[0], holder_doc, where)
        elif found == "object" and "additionalProperties" in member:
            extra = same[0].get("additionalProperties")
            if isinstance(extra, dict) and isinstance(member["additionalProperties"], dict):
                fits(member["additionalProperties"], value_doc, extra, holder_doc, where + "{}")


def compare_fields(
    server: Schema, sdoc: Doc, client: Schema, cdoc: Doc, where: str, *, answer: bool = True
) -> None:
    """Each client field is a server field, required alike, and the types fit in the
    direction the data flows."""
    server_props, server_required = server.get("properties", {}), set(server.get("required", []))
    client_required = set(client.get("required", []))
    for name, field in client.get("properties", {}).items():
        if name == "event_id":
            continue
        at = f"{where}.{name}"
        assert name in server_props, f"{at}: the server's schema has no such field"
        assert (name in client_required) == (name in server_required), f"{at}: required differs"
        if answer:
            fits(server_props[name], sdoc, field, cdoc, at)
        else:
            fits(field, cdoc, server_props[name], sdoc, at)


@pytest.fixture(scope="module")
def document(service: Api) -> Doc:
    return Doc(service.app.openapi())


def operation(doc: Doc, operation_id: str) -> Schema:
    for path in doc.root["paths"].values():
        for op in path.values():
            if op.get("operationId") == operation_id:
                return dict(op)
    pytest.fail(f"the server has no operation {operation_id}")


def check_model(server: Schema, sdoc: Doc, annotation: Any, where: str, *, answer: bool) -> None:
    cdoc, client = client_doc(annotation)
    [resolved] = cdoc.alternatives(client)
    for member in sdoc.alternatives(server):  # a body's every variant (one per algorithm)
        if answer:
            compare_fields(member, sdoc, resolved, cdoc, where)
        else:
            compare_fields(member, sdoc, resolved, cdoc, where, answer=False)


@pytest.mark.parametrize(("operation_id", "status"), sorted(ANSWERS))
def test_answers_match(document: Doc, operation_id: str, status: str) -> None:
    responses = operation(document, operation_id)["responses"]
    assert status in responses, f"{operation_id} answers {sorted(responses)}"
    schema = responses[status]["content"]["application/json"]["schema"]
    check_model(schema, document, ANSWERS[operation_id, status], operation_id, answer=True)


@pytest.mark.parametrize("operation_id", sorted(BODIES))
def test_bodies_match(document: Doc, operation_id: str) -> None:
    body = operation(document, operation_id)["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    check_model(schema, document, BODIES[operation_id], operation_id, answer=False)


def test_event_payloads_match(document: Doc) -> None:
    components = document.root["components"]["schemas"]
    for name, model in {**COMPONENTS, **COMPONENT_FIELDS}.items():
        check_model(components[name], document, model, name, answer=True)
    # The end event's job is the client's Job: the same checked type.
    assert events.EndEvent.model_fields["job"].annotation is schemas.Job


def test_a_wrong_type_is_caught(document: Doc) -> None:
    """The checker itself: a field of the wrong type, or a required one the server may
    omit, fails."""

    class WrongType(BaseModel):
        id: int

    class NotRequired(BaseModel):
        id: str
        queue_position: int | None

    job = operation(document, "get_job")["responses"]["200"]["content"]["application/json"][
        "schema"
    ]
    for wrong in (WrongType, NotRequired):
        with pytest.raises(AssertionError):
            check_model(job, document, wrong, "get_job", answer=True)
