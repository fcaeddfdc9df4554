"""The HTTP error contract, in-process: every bad spec or query is a 4xx with a JSON body
`{code, message, field?}` that names the problem, and nothing is created by a refused request."""

from __future__ import annotations

from typing import Any

import pytest

from store import models
from store.db import session_factory, session_scope
from tests.api.conftest import Api
from worker.runner import run_job


@pytest.mark.parametrize(
    ("spec", "field", "code"),
    [
        ({"algorithm": "nope"}, "algorithm", "unknown_algorithm"),
        ({"algorithm": "dqn", "config": {"bogus": 1}}, "config.bogus", "validation_error"),
        ({"algorithm": "dqn", "config": {"total_steps": -5}}, "config.total_steps", None),
        ({"algorithm": "dqn", "config": {"gamma": 3}}, "config.gamma", None),
        ({"algorithm": "dqn", "config": {"env_id": "Pong-v5"}}, "config.env_id", None),
        ({"algorithm": "gan", "config": {"loss": "wasserstein"}}, "config.loss", None),
        ({"algorithm": "dqn", "seed": -1}, "seed", None),
        ({"algorithm": "dqn", "surprise": True}, "surprise", None),
        ({"config": {}}, "algorithm", None),
        (
            {
                "algorithm": "value_iteration",
                "config": {"env": {"kind": "grid", "layout": ["S.X", "..G"]}},
            },
            "config.env",
            None,
        ),
        (
            {
                "algorithm": "value_iteration",
                "config": {"env": {"kind": "grid", "layout": ["##", "##"]}},
            },
            "config.env",
            None,
        ),
        ({"algorithm": "value_iteration", "config": {"discount": 1.5}}, "config.discount", None),
        ({"algorithm": "gan", "register_as": {"name": "bad name!"}}, "register_as.name", None),
        (
            {"algorithm": "gan", "register_as": {"name": "ok", "aliases": ["7"]}},
            "register_as.alias",
            None,
        ),
        (
            {"algorithm": "gan", "config": {"dataset": {"kind": "uploaded", "id": "nope"}}},
            "config.dataset.id",
            "dataset_not_found",
        ),
        (
            {"algorithm": "dqn", "config": {"dataset": {"kind": "uploaded", "id": "x"}}},
            "config.dataset",
            None,
        ),
    ],
)
def test_bad_job_specs(api: Api, spec: dict[str, Any], field: str, code: str | None) -> None:
    body = api.error("POST", "/v1/jobs", 422, json=spec)
    assert body["field"].startswith(field), body
    if code:
        assert body["code"] == code
    assert api.client.get("/v1/jobs").json()["count"] == 0  # nothing was created


def test_malformed_requests(api: Api) -> None:
    body = api.error(
        "POST", "/v1/jobs", 400, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert body["code"] == "invalid_json"
    assert "field" not in body  # a character offset is no field: the message says where
    assert "line 1 column 2" in body["message"]
    json_type = {"content-type": "application/json"}
    empty = api.error("POST", "/v1/jobs", 422, content=b"", headers=json_type)
    assert empty["code"] == "body_required" and empty["field"] == "body"
    untyped = api.error("POST", "/v1/jobs", 415, content=b'{"algorithm": "gan"}')
    assert "has none" in untyped["message"] and untyped["field"] == "content-type"
    api.error("POST", "/v1/jobs", 422, json=["a", "list"])
    for url in ("/v1/jobs/nope", "/v1/jobs/nope/metrics", "/v1/models/nope", "/v1/algorithms/nope"):
        api.error("GET", url, 404)
    api.error("POST", "/v1/jobs/nope/cancel", 404)
    api.error("GET", "/v1/jobs", 422, params={"status": "sleeping"})
    api.error("GET", "/v1/jobs", 422, params={"limit": 0})
    api.error("DELETE", "/v1/algorithms", 405)
    huge = b'{"algorithm": "dqn", "name": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    body = api.error("POST", "/v1/jobs", 413, content=huge)
    assert body["code"] == "request_too_large"


@pytest.mark.parametrize(
    ("algorithm", "method", "path", "payload", "field"),
    [
        ("gan", "POST", "samples", {"n": 0}, "n"),
        ("gan", "POST", "samples", {"n": 10_001}, "n"),
        ("gan", "POST", "samples", {"n": "many"}, "n"),
        ("gan", "POST", "samples", {"n": 3, "temperature": 2}, "temperature"),
        ("gan", "POST", "q-values", {"observations": [[0, 0]]}, "query"),
        ("gan", "GET", "values", None, "query"),
        ("gan", "POST", "discriminator-scores", {"samples": [[0.0]]}, "samples.0"),
        ("dqn", "POST", "q-values", {"observations": [[0.0, 1.0]]}, "observations.0"),
        ("dqn", "POST", "q-values", {"observations": []}, "observations"),
        ("dqn", "POST", "q-values", {"observations": [["a", 1, 2, 3]]}, "observations.0.0"),
        ("dqn", "POST", "q-values", {"states": [0]}, "states"),
        ("dqn", "POST", "q-values", {}, ""),
        ("dqn", "POST", "actions", {"observations": [[0, 0, 0, 0, 0]]}, "observations.0"),
        ("dqn", "POST", "samples", {"n": 2}, "query"),
        ("dqn", "GET", "rewards", None, "query"),
        ("dqn", "POST", "evaluate", {"episodes": 0}, "episodes"),
        ("value_iteration", "POST", "q-values", {"states": [16]}, "states.0"),
        ("value_iteration", "POST", "q-values", {"states": [[4, 0]]}, "states.0"),
        ("value_iteration", "POST", "q-values", {"states": [-1]}, "states.0"),
        ("value_iteration", "POST", "q-values", {"observations": [[0.0]]}, "observations"),
        ("value_iteration", "POST", "rewards", {"states": [0]}, "query"),
        ("maxent_irl", "POST", "rewards", {"states": [[9, 9]]}, "states.0"),
        ("maxent_irl", "POST", "rewards", {"states": [[0, 1, 2]]}, "states.0"),
        ("maxent_irl", "POST", "rewards", {"states": "all"}, "states"),
    ],
)
def test_bad_queries(
    shared_api: Api,
    trained: dict[str, dict[str, Any]],
    algorithm: str,
    method: str,
    path: str,
    payload: dict[str, Any] | None,
    field: str,
) -> None:
    url = f"/v1/models/{trained[algorithm]['model_id']}/{path}"
    kwargs = {"json": payload} if payload is not None else {}
    body = shared_api.error(method, url, 422, **kwargs)
    if field:
        assert body.get("field", "").startswith(field), body


def test_non_finite_observations(shared_api: Api, trained: dict[str, dict[str, Any]]) -> None:
    url = f"/v1/models/{trained['dqn']['model_id']}/q-values"
    for token in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):  # not JSON, or past a float
        raw = b'{"observations": [[0.0, ' + token + b", 0.0, 0.0]]}"
        body = shared_api.error(
            "POST", url, 400, content=raw, headers={"content-type": "application/json"}
        )
        assert body["code"] == "invalid_json", body
    body = shared_api.error("POST", url, 422, json={"observations": [[0.0, 1e308, 0.0, 0.0]]})
    assert body["field"].startswith("observations"), body  # finite, but not for float32


def test_model_of_unfinished_job(api: Api) -> None:
    job = api.submit("dqn", {"total_steps": 100_000})
    assert api.client.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "cancelled"
    body = api.error("GET", f"/v1/models/{job['id']}", 409)
    assert body["code"] == "model_not_ready"
    api.error("POST", f"/v1/models/{job['id']}/q-values", 409, json={"states": [0]})


def test_missing_model_file_is_a_clear_503(api: Api) -> None:
    job = api.submit("value_iteration", {"env": {"kind": "frozen_lake"}, "discount": 0.5})
    assert run_job(job["id"], api.settings) == "succeeded"  # no GET: nothing warms the cache
    with session_scope(session_factory(api.settings.resolved_database_url)) as session:
        row = models.model_of_job(session, job["id"])
        assert row is not None
        api.app.state.artifacts.delete(row.artifact_uri)
    for url in (f"/v1/models/{job['id']}/values", f"/v1/models/{row.id}/file"):
        body = api.error("GET", url, 503)
        assert body["code"] == "model_unavailable"


def test_error_fields_are_the_clients_json_path(api: Api) -> None:
    """pydantic puts the union member it tried into a location (`config.env.grid.slip`); the
    client sent `config.env.slip`, and that is the field named."""
    cases = [
        ({"algorithm": "value_iteration", "config": {"env": {"kind": "grid", "slip": 5}}},
         "config.env.slip"),
        ({"algorithm": "gan", "config": {"dataset": {"kind": "ring", "n_modes": -1}}},
         "config.dataset.n_modes"),
        ({"algorithm": "maxent_irl", "config": {"demonstrations": {"source": "dataset"}}},
         "config.demonstrations.dataset"),
        ({"algorithm": "policy_evaluation",
          "config": {"policy": {"kind": "table", "actions": [True]}}},
         "config.policy.actions.0"),
    ]  # fmt: skip
    for body, field in cases:
        error = api.error("POST", "/v1/jobs", 422, json=body)
        assert error["field"] == field, error
        assert error["message"].startswith(f"{field}: ")
