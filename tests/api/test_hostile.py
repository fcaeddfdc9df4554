"""Hostile input, in-process: every bad request is a 4xx with our error body and its request id,
never a 500, on SQLite and on PostgreSQL (which cannot even compare a string holding NUL).

Covered: request ids, strict JSON (NaN and friends, numbers past a float, deep nesting,
invalid UTF-8, NUL in strings, wrong content types), control characters in paths, query
strings and headers, ids of 10,000 characters, unbounded offsets, strings and booleans where
numbers go, oversized batches, and 5xx bodies that name no server path."""

from __future__ import annotations

import datetime
import io
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from fastapi import Request
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

import worker.queries
from api import middleware
from api.strict_input import MAX_DEPTH, StrictRoute
from ml.core.model import load_bytes, torch_bytes
from ml.queries import JSON as JSON_MEDIA
from ml.queries.base import MAX_FEATURES
from store import jobs, models
from store.artifacts import ArtifactUnavailable
from store.db import session_factory, session_scope
from store.settings import Settings
from store.tables import JobKind
from tests.api.conftest import Api, make_api
from tests.conftest import fresh_postgres_database
from tests.helpers import migrate
from worker.enqueue import QUERY_QUEUE
from worker.runner import run_job

JSON = {"content-type": "application/json"}
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")
LONG = "x" * 10_000


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    """The API on each database: what reaches the database must be refused on both."""
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        yield make_api(root)
        return
    with fresh_postgres_database() as url:
        migrate(url)
        yield Api(Settings(var_dir=root, database_url=url, heartbeat_seconds=0.2))


@pytest.fixture(scope="module")
def exported_model(backend_api: Api) -> bytes:
    """A model file as `GET /v1/models/{id}/file` answers it, to be tampered with."""
    model_id = backend_api.train("value_iteration")["model_id"]
    return backend_api.client.get(f"/v1/models/{model_id}/file").content


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Api:
    """One service for the module: its tests create next to nothing."""
    return make_api(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def query_url(api: Api) -> Callable[[str, str], str]:
    """`query_url(algorithm, query)`: where to ask a model of that algorithm (a tabular model
    and a GAN, each trained in well under a second)."""
    ids = {name: api.train(name)["model_id"] for name in ("value_iteration", "gan")}
    return lambda algorithm, query: f"/v1/models/{ids[algorithm]}/{query}"


def job_count(api: Api) -> int:
    return int(api.client.get("/v1/jobs").json()["count"])


def refused(
    api: Api, method: str, url: str, status: int, code: str, **kwargs: Any
) -> dict[str, Any]:
    """The error body of a refused request, checked for its shape and its request id."""
    r = api.client.request(method, url, **kwargs)
    assert r.status_code == status, r.text
    body = dict(r.json())
    assert body["code"] == code, body
    assert body["message"] and len(body["message"]) <= 500, body
    assert body["request_id"] == r.headers["x-request-id"], body
    return body


# -- request ids -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        ("GET", "/v1/jobs/nope", {}, 404),
        ("GET", "/v1/nowhere", {}, 404),
        ("DELETE", "/v1/algorithms", {}, 405),
        ("POST", "/v1/jobs", {"json": {"algorithm": "nope"}}, 422),
        ("POST", "/v1/jobs", {"content": b"{", "headers": JSON}, 400),
        ("POST", "/v1/jobs", {"content": b"{}", "headers": {"content-type": "text/plain"}}, 415),
        ("GET", "/v1/jobs/a%00b", {}, 400),
        ("GET", "/v1/jobs", {"params": {"offset": 2**63}}, 422),
        # A declared length past the limit is refused before the body is read.
        (
            "POST",
            "/v1/jobs",
            {"content": b"{}", "headers": {**JSON, "content-length": "99999999999"}},
            413,
        ),
    ],
)
def test_every_error_carries_the_request_id(
    api: Api, method: str, url: str, kwargs: dict[str, Any], status: int
) -> None:
    headers = kwargs.get("headers", {})
    rest = {k: v for k, v in kwargs.items() if k != "headers"}
    mine = api.client.request(method, url, headers={**headers, "X-Request-ID": "req-42"}, **rest)
    assert mine.status_code == status, mine.text
    assert mine.headers["x-request-id"] == "req-42" and mine.json()["request_id"] == "req-42"
    generated = api.client.request(method, url, headers=headers, **rest)
    assert generated.status_code == status, generated.text
    assert GENERATED_ID.match(generated.headers["x-request-id"])
    assert generated.json()["request_id"] == generated.headers["x-request-id"]


@pytest.mark.parametrize("sent", ["a b", "", "x" * 129, "é", "a\tb"])
def test_an_unusable_request_id_is_replaced(api: Api, sent: str) -> None:
    r = api.client.get("/healthz", headers={"X-Request-ID": sent.encode()})
    assert r.status_code == 200 and GENERATED_ID.match(r.headers["x-request-id"])


def test_successes_carry_a_request_id_too(api: Api) -> None:
    for url in ("/healthz", "/v1/algorithms", "/v1/jobs"):
        r = api.client.get(url, headers={"X-Request-ID": "trace:1/2"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "trace:1/2"


def test_a_500_carries_the_request_id_and_names_nothing(api: Api) -> None:
    def boom() -> None:
        raise RuntimeError(f"secret detail at {api.settings.var_dir}")

    api.app.add_api_route("/boom", boom)
    body = refused(api, "GET", "/boom", 500, "internal_error", headers={"X-Request-ID": "r500"})
    assert body["request_id"] == "r500" and "secret" not in body["message"]


def test_a_shed_request_carries_the_request_id() -> None:
    async def never_called(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("a full API must not run the request")

    shedding = middleware.LoadShedding(never_called, limit=0, threads=1, queue=0)
    client = TestClient(middleware.RequestId(shedding))
    r = client.get("/v1/jobs", headers={"X-Request-ID": "shed-1"})
    assert r.status_code == 503 and r.json()["code"] == "overloaded"
    assert r.headers["x-request-id"] == r.json()["request_id"] == "shed-1"


# -- strict JSON -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        b'{"algorithm": "dqn", "max_runtime_seconds": NaN}',
        b'{"algorithm": "dqn", "max_runtime_seconds": Infinity}',
        b'{"algorithm": "dqn", "max_runtime_seconds": -Infinity}',
        b'{"algorithm": "dqn", "max_runtime_seconds": 1e999}',
        b'{"algorithm": "dqn", "config": {"gamma": -1e400}}',
        b'{"algorithm": "dqn", "max_runtime_seconds": ' + b"9" * 400 + b".0}",
        b'{"algorithm": "dqn", "seed": ' + b"1" * 5000 + b"}",
        b"[" * 100_000,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"algorithm": "dqn", "config": {"x": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}}",
        b'{"algorithm": "dq\xff\xfe"}',
        b'\xef\xbb\xbf{"algorithm": "dqn"}',
        b'{"algorithm": "dqn",}',
        b"{'algorithm': 'dqn'}",
        b'{"algorithm": "dqn"} {}',
    ],
    ids=[
        "NaN",
        "Infinity",
        "-Infinity",
        "1e999",
        "-1e400",
        "400 digits",
        "5000-digit int",
        "100k open",
        "100k nested",
        "too deep",
        "not UTF-8",
        "BOM",
        "trailing comma",
        "single quotes",
        "two values",
    ],
)
def test_what_is_not_strict_json_is_400(api: Api, raw: bytes) -> None:
    before = job_count(api)
    refused(api, "POST", "/v1/jobs", 400, "invalid_json", content=raw, headers=JSON)
    assert job_count(api) == before


def test_nesting_up_to_the_limit_is_json(api: Api) -> None:
    depth = MAX_DEPTH - 2  # inside {"config": {"x": ...}}
    raw = b'{"algorithm": "dqn", "config": {"x": ' + b"[" * depth + b"]" * depth + b"}}"
    body = refused(api, "POST", "/v1/jobs", 422, "validation_error", content=raw, headers=JSON)
    assert body["field"] == "config.x"  # parsed; refused by the config, not the parser
    finite = b'{"algorithm": "dqn", "config": {"gamma": 1e-300, "learning_rate": 1e+2}}'
    body = refused(api, "POST", "/v1/jobs", 422, "validation_error", content=finite, headers=JSON)
    assert body["field"] == "config.learning_rate"  # parsed, and over its bound


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"algorithm": "dqn", "name": "a\x00b"}, "name"),
        ({"algorithm": "dqn", "tags": {"team": "\x00"}}, "tags.team"),
        ({"algorithm": "dqn", "tags": {"te\x00am": "x"}}, "tags.te\x00am"),
        ({"algorithm": "dqn", "config": {"env_id": "CartPole\x00"}}, "config.env_id"),
        ({"algorithm": "\x00"}, "algorithm"),
        (
            {"algorithm": "dqn", "register_as": {"name": "m", "aliases": ["ok", "a\x00"]}},
            "register_as.aliases.1",
        ),
        ({"algorithm": "dqn", "name": "lone \ud800 surrogate"}, "name"),
    ],
)
def test_nul_or_a_lone_surrogate_in_a_string_is_refused_by_field(
    backend_api: Api, spec: dict[str, Any], field: str
) -> None:
    raw = json.dumps(spec).encode()  # NUL as \u0000, as every client sends it
    body = refused(
        backend_api, "POST", "/v1/jobs", 422, "invalid_characters", content=raw, headers=JSON
    )
    assert body["field"] == field


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
    ],
)
def test_json_routes_refuse_other_content_types(api: Api, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    before = job_count(api)
    refused(
        api,
        "POST",
        "/v1/jobs",
        415,
        "unsupported_media_type",
        content=b'{"algorithm": "dqn"}',
        headers=headers,
    )
    assert job_count(api) == before


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/merge-patch+json"]
)
def test_json_media_types_are_json(api: Api, content_type: str) -> None:
    r = api.client.post(
        "/v1/jobs", content=b'{"algorithm": "dqn"}', headers={"content-type": content_type}
    )
    assert r.status_code == 202, r.text


# -- control characters in paths, query strings, headers -------------------------------------------
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/v1/jobs/a%00b"),
        ("GET", "/v1/jobs/a%00b/metrics"),
        ("POST", "/v1/jobs/a%00b/cancel"),
        ("GET", "/v1/models/a%00b"),
        ("GET", "/v1/models/m%00@prod/values"),
        ("GET", "/v1/models/a%0Ab/file"),
        ("GET", "/v1/datasets/a%00b"),
        ("DELETE", "/v1/datasets/a%1Fb"),
        ("GET", "/v1/registry/a%00b"),
        ("DELETE", "/v1/registry/name/aliases/a%7Fb"),
        ("GET", "/v1/query-results/a%00b"),
        ("GET", "/v1/algorithms/dqn%00"),
        ("GET", "/v1/jobs?algorithm=dqn%00"),
        ("GET", "/v1/jobs?status=queued&algorithm=%00"),
        ("GET", "/v1/models?algorithm=a%00b"),
        ("GET", "/v1/models?kind=%0d%0a"),
        ("GET", "/v1/datasets?name=a%00b"),
        ("GET", "/v1/datasets?kind=%00"),
        ("GET", "/v1/jobs/x/metrics?name=losses%00"),
        ("GET", "/v1/registry?x%00=1"),
    ],
)
def test_control_characters_in_paths_and_queries_are_400(
    backend_api: Api, method: str, url: str
) -> None:
    body = refused(backend_api, method, url, 400, "invalid_characters")
    assert body["field"]


def test_control_characters_in_headers_are_400(api: Api) -> None:
    body = refused(
        api, "GET", "/v1/jobs", 400, "invalid_characters", headers={"X-Anything": "a\x01b"}
    )
    assert body["field"] == "x-anything"
    assert api.client.get("/v1/jobs", headers={"X-Anything": "a\tb"}).status_code == 200


# -- long ids are not echoed -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "url", "code"),
    [
        ("GET", f"/v1/jobs/{LONG}", "job_not_found"),
        ("GET", f"/v1/jobs/{LONG}/metrics", "job_not_found"),
        ("POST", f"/v1/jobs/{LONG}/cancel", "job_not_found"),
        ("GET", f"/v1/datasets/{LONG}", "dataset_not_found"),
        ("GET", f"/v1/registry/{LONG}", "name_not_found"),
        ("GET", f"/v1/query-results/{LONG}", "query_result_not_found"),
        ("GET", f"/v1/algorithms/{LONG}", "unknown_algorithm"),
    ],
)
def test_a_10000_character_id_is_404_without_its_echo(
    backend_api: Api, method: str, url: str, code: str
) -> None:
    body = refused(backend_api, method, url, 404, code)
    assert LONG not in body["message"] and len(body["message"]) < 200, body


@pytest.mark.parametrize("url", [f"/v1/models/{LONG}", f"/v1/models/{LONG}/values"])
def test_a_model_reference_is_bounded(api: Api, url: str) -> None:
    body = refused(api, "GET", url, 422, "validation_error")  # no name@alias is this long
    assert body["field"] == "model" and LONG not in body["message"]


def test_a_long_model_reference_is_not_echoed(api: Api) -> None:
    reference = "n" * 150 + "@" + "a" * 40
    body = refused(api, "GET", f"/v1/models/{reference}", 404, "model_not_found")
    assert "n" * 65 not in body["message"], body


def test_long_names_in_bodies_are_not_echoed(api: Api) -> None:
    for spec in (
        {"algorithm": LONG},
        {"algorithm": "dqn", "config": {LONG: 1}},
        {"algorithm": "dqn", "tags": {LONG: "x"}},
    ):
        r = api.client.post("/v1/jobs", json=spec)
        assert r.status_code == 422 and LONG not in r.text and len(r.text) < 2000, r.text


# -- bounded lists ---------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["/v1/jobs", "/v1/models", "/v1/datasets", "/v1/registry"])
@pytest.mark.parametrize(
    ("name", "value"),
    [("offset", 2**63), ("offset", 10**30), ("offset", -1), ("limit", 2**63), ("limit", "true")],
)
def test_unbounded_paging_is_422(backend_api: Api, url: str, name: str, value: Any) -> None:
    body = refused(backend_api, "GET", url, 422, "validation_error", params={name: value})
    assert body["field"] == name


@pytest.mark.parametrize("url", ["/v1/jobs", "/v1/models", "/v1/datasets", "/v1/registry"])
def test_the_largest_offset_is_an_empty_page(backend_api: Api, url: str) -> None:
    r = backend_api.client.get(url, params={"offset": 1_000_000_000})
    assert r.status_code == 200 and r.json()["data"] == []


def test_metric_names_are_bounded(api: Api) -> None:
    job_id = api.submit("value_iteration", {"env": {"kind": "frozen_lake"}})["id"]
    url = f"/v1/jobs/{job_id}/metrics"
    assert api.client.get(url, params={"name": ["dp/delta"] * 100}).status_code == 200
    body = refused(api, "GET", url, 422, "validation_error", params={"name": ["x"] * 101})
    assert body["field"] == "name"


def test_a_version_past_any_integer_is_404(backend_api: Api) -> None:
    refused(backend_api, "GET", "/v1/models/name@" + "9" * 30, 404, "model_not_found")


# -- strict types ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"seed": True}, "seed"),
        ({"seed": "5"}, "seed"),
        ({"seed": 5.0}, "seed"),
        ({"seed": 1e308}, "seed"),
        ({"seed": 10**30}, "seed"),
        ({"max_runtime_seconds": "5"}, "max_runtime_seconds"),
        ({"max_runtime_seconds": True}, "max_runtime_seconds"),
        ({"max_runtime_seconds": 1e308}, "max_runtime_seconds"),
        ({"max_runtime_seconds": 10**30}, "max_runtime_seconds"),
        ({"name": 5}, "name"),
        ({"tags": {"a": 1}}, "tags.a"),
        ({"tags": {"a": True}}, "tags.a"),
        ({"register_as": {"name": 5}}, "register_as.name"),
        ({"config": {"total_steps": 1e308}}, "config.total_steps"),
        ({"config": {"total_steps": 10**30}}, "config.total_steps"),
        ({"config": {"learning_rate": 1e308}}, "config.learning_rate"),
    ],
)
def test_numbers_are_numbers_in_job_specs(api: Api, spec: dict[str, Any], field: str) -> None:
    body = refused(
        api, "POST", "/v1/jobs", 422, "validation_error", json={"algorithm": "dqn", **spec}
    )
    assert body["field"] == field


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"total_steps": "5"}, "config.total_steps"),
        ({"total_steps": True}, "config.total_steps"),
        ({"total_steps": 5.0}, "config.total_steps"),
        ({"learning_rate": "0.1"}, "config.learning_rate"),
        ({"double_dqn": "yes"}, "config.double_dqn"),
        ({"hidden": ["8"]}, "config.hidden.0"),
    ],
)
def test_numbers_are_numbers_in_configs(api: Api, config: dict[str, Any], field: str) -> None:
    body = refused(
        api,
        "POST",
        "/v1/jobs",
        422,
        "validation_error",
        json={"algorithm": "dqn", "config": config},
    )
    assert body["field"] == field


def test_json_types_that_fit_are_accepted(api: Api) -> None:
    spec = {
        "algorithm": "dqn",
        "seed": 1,
        "max_runtime_seconds": 60,
        "config": {"learning_rate": 1, "total_steps": 100},
    }
    assert api.client.post("/v1/jobs", json=spec).status_code == 202  # an int is a fine float
    grid = {"algorithm": "value_iteration", "config": {"env": {"kind": "grid", "layout": ["S.G"]}}}
    assert api.client.post("/v1/jobs", json=grid).status_code == 202


@pytest.mark.parametrize(
    ("algorithm", "query", "payload", "field"),
    [
        (
            "value_iteration",
            "q-values",
            {"observations": [["1", "2", "3", "4"]]},
            "observations.0.0",
        ),
        ("value_iteration", "q-values", {"states": [True]}, "states.0"),
        ("value_iteration", "q-values", {"states": ["1"]}, "states.0"),
        ("value_iteration", "q-values", {"states": [1.0]}, "states.0"),
        ("value_iteration", "q-values", {"states": [[True, 0]]}, "states.0"),
        ("value_iteration", "rewards", {"states": [10**30]}, "query"),  # a tabular model's values
        ("gan", "samples", {"n": "5"}, "n"),
        ("gan", "samples", {"n": True}, "n"),
        ("gan", "samples", {"n": 5.0}, "n"),
        ("gan", "samples", {"n": 10**30}, "n"),
        ("gan", "samples", {"n": 1e308}, "n"),
        ("gan", "samples", {"n": 2, "seed": 2**64}, "seed"),
        ("gan", "samples", {"n": 2, "seed": "1"}, "seed"),
        ("gan", "discriminator-scores", {"samples": [[True, 0]]}, "samples.0.0"),
        ("gan", "discriminator-scores", {"samples": [["0.5", 0]]}, "samples.0.0"),
        ("gan", "discriminator-scores", {"samples": [[1e308, 0]]}, "samples"),
    ],
)
def test_numbers_are_numbers_in_queries(
    api: Api,
    query_url: Callable[[str, str], str],
    algorithm: str,
    query: str,
    payload: dict[str, Any],
    field: str,
) -> None:
    body = api.error("POST", query_url(algorithm, query), 422, json=payload)
    assert body["field"].startswith(field), body


def test_ints_are_fine_floats_in_queries(api: Api, query_url: Callable[[str, str], str]) -> None:
    r = api.client.post(query_url("gan", "discriminator-scores"), json={"samples": [[1, 0]]})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("algorithm", "query", "payload", "field"),
    [
        ("value_iteration", "q-values", {"states": [0] * 4097}, "states"),
        ("value_iteration", "q-values", {"observations": [[0.0]] * 4097}, "observations"),
        (
            "value_iteration",
            "q-values",
            {"observations": [[0.0] * (MAX_FEATURES + 1)]},
            "observations.0",
        ),
        ("gan", "discriminator-scores", {"samples": [[0.0, 0.0]] * 4097}, "samples"),
        ("gan", "discriminator-scores", {"samples": [[0.0] * (MAX_FEATURES + 1)]}, "samples.0"),
        ("gan", "samples", {"n": 10_001}, "n"),
    ],
)
def test_batches_are_bounded(
    api: Api,
    query_url: Callable[[str, str], str],
    algorithm: str,
    query: str,
    payload: dict[str, Any],
    field: str,
) -> None:
    body = api.error("POST", query_url(algorithm, query), 422, json=payload)
    assert body["field"] == field, body


def test_a_batch_of_bad_rows_gets_a_short_answer(
    api: Api, query_url: Callable[[str, str], str]
) -> None:
    rows = [["a", "b"]] * 4096
    body = api.error("POST", query_url("gan", "discriminator-scores"), 422, json={"samples": rows})
    assert len(body["errors"]) == 20 and "(and 8191 more)" in body["message"]


def test_alias_versions_are_bounded(api: Api) -> None:
    for version in (True, "1", 2**63):
        body = refused(
            api,
            "PUT",
            "/v1/registry/name/aliases/prod",
            422,
            "validation_error",
            json={"version": version},
        )
        assert body["field"] == "version"


# -- 5xx bodies name no server path ----------------------------------------------------------------
def test_a_missing_model_file_names_no_path(api: Api) -> None:
    job = api.submit("value_iteration", {"env": {"kind": "frozen_lake"}})
    assert run_job(job["id"], api.settings) == "succeeded"
    with session_scope(session_factory(api.settings.resolved_database_url)) as session:
        row = models.model_of_job(session, job["id"])
        assert row is not None
        api.app.state.artifacts.delete(row.artifact_uri)
    body = refused(api, "GET", f"/v1/models/{row.id}/values", 503, "model_unavailable")
    assert str(api.settings.var_dir) not in body["message"] and "file://" not in body["message"]


def test_an_unavailable_artifact_store_names_no_host(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = api.submit("value_iteration", {"env": {"kind": "frozen_lake"}})
    assert run_job(job["id"], api.settings) == "succeeded"

    def unreachable(uri: str) -> bytes:
        raise ArtifactUnavailable(
            f"read {uri}: cannot use the S3 store at http://10.1.2.3:8333: boto said no"
        )

    monkeypatch.setattr(api.app.state.artifacts, "get", unreachable)
    body = refused(api, "GET", f"/v1/models/{job['id']}/file", 503, "artifact_store_unavailable")
    assert "10.1.2.3" not in body["message"] and "boto" not in body["message"]


def test_a_query_job_failed_by_a_bug_names_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_id = api.train("value_iteration")["model_id"]
    with session_scope(session_factory(api.settings.resolved_database_url)) as session:
        spec = {"model_id": model_id, "query": "values", "request": {}, "media_type": JSON_MEDIA}
        job = jobs.create_job(
            session,
            kind=JobKind.query,
            algorithm="value_iteration",
            config=spec,
            seed=0,
            queue=QUERY_QUEUE,
        )
        job_id = job.id

    def bug(name: str) -> None:
        raise RuntimeError(f"secret state in {api.settings.var_dir}")

    monkeypatch.setattr(worker.queries, "get_query", bug)
    assert run_job(job_id, api.settings) == "failed"
    body = refused(api, "GET", f"/v1/query-results/{job_id}", 503, "query_failed")
    assert "secret" not in body["message"] and f"(reference {job_id}/1)" in body["message"]


def test_a_malicious_model_file_is_422_in_our_words(api: Api) -> None:
    files = {
        "file": (
            "evil.pt",
            b"PK\x03\x04 not a zip at all" + b"\x00" * 64,
            "application/octet-stream",
        )
    }
    body = refused(api, "POST", "/v1/models", 422, "invalid_model_file", files=files)
    assert body["message"].startswith("cannot read 'evil.pt': corrupt, truncated"), body
    long_name = {"file": ("n" * 300 + ".pt", b"junk", "application/octet-stream")}
    body = refused(api, "POST", "/v1/models", 422, "invalid_model_file", files=long_name)
    assert "n" * 65 not in body["message"], body


def test_a_pickle_of_objects_is_422_without_torch_s_words(api: Api) -> None:
    blob = torch_bytes({"format": 1, "when": datetime.datetime(2026, 1, 1)})  # not weights-only
    files = {"file": ("m.pt", blob, "application/octet-stream")}
    body = refused(api, "POST", "/v1/models", 422, "invalid_model_file", files=files)
    assert "Weights" not in body["message"] and "datetime" not in body["message"], body


@pytest.mark.parametrize(
    "change",
    [
        {"algorithm": "a\x00b"},
        {"algorithm": "a" * 100},
        {"note": {"k\x00": 1}},
        {"summary": {"loss": float("nan")}},
        {"note": "y" * 1_000_001},
    ],
)
def test_an_imported_model_s_metadata_must_be_storable(
    backend_api: Api, exported_model: bytes, change: dict[str, Any]
) -> None:
    payload = load_bytes(exported_model).payload()
    payload["metadata"] = {**payload["metadata"], **change}
    files = {"file": ("m.pt", torch_bytes(payload), "application/octet-stream")}
    body = refused(backend_api, "POST", "/v1/models", 422, "invalid_model_file", files=files)
    assert body["message"].startswith("'m.pt': its metadata "), body


def test_form_fields_refuse_control_characters(backend_api: Api) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros((64, 2), dtype=np.float32))
    files = {"file": ("d.npz", buffer.getvalue(), "application/octet-stream")}
    data = {"kind": "samples", "name": "a\x00b"}
    body = refused(
        backend_api, "POST", "/v1/datasets", 422, "validation_error", data=data, files=files
    )
    assert body["field"] == "name"


# -- the middlewares' pieces -----------------------------------------------------------------------
def scope_of(
    path: str = "/", query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> Scope:
    return {"type": "http", "path": path, "query_string": query, "headers": headers or []}


@pytest.mark.parametrize(
    ("scope", "field"),
    [
        (scope_of("/v1/jobs/a\x00b"), "path"),
        (scope_of("/v1/jobs/a\x7f"), "path"),
        (scope_of(query=b"a=1&name=x%00y"), "name"),
        (scope_of(query=b"a=1&name=x\x00y"), "name"),
        (scope_of(query=b"na+me%0a=1"), "na me\n"),
        (scope_of(headers=[(b"host", b"x"), (b"x-key", b"a\rb")]), "x-key"),
    ],
)
def test_control_character_finds_the_place(scope: Scope, field: str) -> None:
    found = middleware.control_character(scope)
    assert found is not None and found[0] == field


@pytest.mark.parametrize(
    "scope",
    [
        scope_of("/v1/jobs/ok-id_1.2@x"),
        scope_of(query=b"name=a%20b&x=%C3%A9"),
        scope_of(headers=[(b"x", b"a\tb\x80")]),
    ],
)
def test_control_character_lets_the_rest_through(scope: Scope) -> None:
    assert middleware.control_character(scope) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"x-request-id", b"abc")], "abc"),
        ([(b"x-request-id", b"!" * 128)], "!" * 128),
        ([(b"x-request-id", b"!" * 129)], None),
        ([(b"x-request-id", b"a b")], None),
        ([(b"x-request-id", b"\xc3\xa9")], None),
        ([(b"other", b"abc")], None),
    ],
)
def test_client_request_id(headers: list[tuple[bytes, bytes]], expected: str | None) -> None:
    assert middleware.client_request_id(scope_of(headers=headers)) == expected


def test_the_request_id_is_in_request_state(api: Api) -> None:
    def peek(request: Request) -> dict[str, str]:
        return {"seen": request.state.request_id}

    api.app.add_api_route("/peek", peek)
    r = api.client.get("/peek", headers={"X-Request-ID": "state-1"})
    assert r.status_code == 200 and r.json() == {"seen": "state-1"}


def test_no_route_parses_json_leniently(api: Api) -> None:
    """Every route with a JSON body is a `StrictRoute` (a new router must say
    `route_class=StrictRoute`)."""
    for route in api.app.routes:
        if isinstance(route, APIRoute) and route.body_field is not None:
            assert isinstance(route, StrictRoute), route.path


# -- files and paths that attack the server ------------------------------------------------------
def _npz(compress: bool = False, **arrays: Any) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buffer, **arrays)  # type: ignore[operator]
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "code"),
    [
        # An object array: loading it would unpickle whatever it holds.
        (_npz(x=np.array([{"a": 1}, None], dtype=object)), "invalid_dataset"),
        # 32 MB of zeros in a few tens of kB: refused by its declared size, never inflated.
        (_npz(compress=True, x=np.zeros((4_000, 1_000))), "invalid_dataset"),
        (b"PK\x03\x04" + b"\x00" * 100, "invalid_dataset"),  # a zip that is not one
    ],
    ids=["pickled-objects", "zip-bomb", "broken-zip"],
)
def test_dataset_files_that_attack_the_parser_are_422(
    tmp_path: Any, content: bytes, code: str
) -> None:
    api = make_api(tmp_path, max_upload_bytes=2 * 1024 * 1024)
    r = api.client.post(
        "/v1/datasets", files={"file": ("d.npz", content)}, data={"kind": "samples"}
    )
    assert r.status_code == 422 and r.json()["code"] == code, r.text
    assert api.client.get("/v1/datasets?builtin=false").json()["count"] == 0


@pytest.mark.parametrize(
    "url",
    [
        "/v1/jobs/..%2F..%2Fetc%2Fpasswd",
        "/v1/models/..%2F..%2Fartifacts%2Fmodels",
        "/v1/models/%2e%2e/file",
        "/v1/datasets/..%5C..%5Cwindows",
        "/v1/query-results/..%2Fcrucible.sqlite",
        "/v1/registry/..%2F..",
    ],
)
def test_path_like_ids_name_nothing(api: Api, url: str) -> None:
    r = api.client.get(url)
    assert r.status_code in (404, 422), r.text
    assert str(api.settings.var_dir.resolve()) not in r.text
    assert "passwd" not in r.text or r.json()["code"].endswith("not_found")


def test_unknown_query_parameters_are_422(api: Api) -> None:
    body = refused(api, "GET", "/v1/jobs?stauts=failed", 422, "unknown_parameter")
    assert body["field"] == "stauts" and "status" in body["message"]
    assert api.client.get("/v1/jobs?status=failed&limit=5").status_code == 200


def test_a_config_past_the_cost_bound_is_422(api: Api) -> None:
    before = api.client.get("/v1/jobs").json()["count"]
    body = refused(
        api,
        "POST",
        "/v1/jobs",
        422,
        "config_too_expensive",
        json={"algorithm": "gan", "config": {"batch_size": 8192, "generator_hidden": [4096] * 3}},
    )
    assert body["field"].startswith("config.")
    assert api.client.get("/v1/jobs").json()["count"] == before
