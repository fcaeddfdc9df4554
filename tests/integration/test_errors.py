"""Bad specs and bad queries: every one a 4xx with a JSON body that names the problem."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.stack import Stack

pytestmark = pytest.mark.integration


def error(stack: Stack, method: str, url: str, status: int, **kwargs: Any) -> dict[str, Any]:
    r = stack.client.request(method, url, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] and body["message"], body
    return dict(body)


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
                "config": {"env": {"kind": "grid", "layout": ["...", "..G"]}},
            },
            "config.env",
            None,
        ),
        ({"algorithm": "value_iteration", "config": {"discount": 1.5}}, "config.discount", None),
    ],
)
def test_bad_job_specs(stack: Stack, spec: dict[str, Any], field: str, code: str | None) -> None:
    before = stack.client.get("/v1/jobs").json()["count"]
    body = error(stack, "POST", "/v1/jobs", 422, json=spec)
    assert body["field"].startswith(field), body
    if code:
        assert body["code"] == code
    assert stack.client.get("/v1/jobs").json()["count"] == before  # nothing was created


def test_malformed_requests(stack: Stack) -> None:
    error(
        stack,
        "POST",
        "/v1/jobs",
        422,
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    error(stack, "POST", "/v1/jobs", 422, json=["a", "list"])
    error(stack, "GET", "/v1/jobs/does-not-exist", 404)
    error(stack, "POST", "/v1/jobs/does-not-exist/cancel", 404)
    error(stack, "GET", "/v1/jobs/does-not-exist/metrics", 404)
    error(stack, "GET", "/v1/jobs", 422, params={"status": "sleeping"})
    error(stack, "GET", "/v1/jobs", 422, params={"limit": 0})
    error(stack, "GET", "/v1/models/does-not-exist", 404)
    error(stack, "GET", "/v1/algorithms/nope", 404)
    error(stack, "DELETE", "/v1/algorithms", 405)
    huge = b'{"algorithm": "dqn", "name": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    body = error(stack, "POST", "/v1/jobs", 413, content=huge)
    assert body["code"] == "request_too_large"


@pytest.fixture(scope="module")
def models(stack: Stack) -> dict[str, str]:
    gan = stack.run("gan", {"total_steps": 20, "batch_size": 32, "eval_interval": 20})
    dqn = stack.run(
        "dqn",
        {"total_steps": 300, "learning_starts": 100, "eval_interval": 300, "eval_episodes": 1},
    )
    vi = stack.run("value_iteration", {"env": {"kind": "frozen_lake"}})
    irl = stack.run(
        "maxent_irl",
        {"env": {"kind": "grid", "layout": ["S..", "..G"]}, "n_demos": 5, "iterations": 5},
    )
    return {"gan": gan["id"], "dqn": dqn["id"], "vi": vi["id"], "irl": irl["id"]}


@pytest.mark.parametrize(
    ("model", "method", "path", "payload", "status", "field"),
    [
        ("gan", "POST", "samples", {"n": 0}, 422, "n"),
        ("gan", "POST", "samples", {"n": 10_001}, 422, "n"),
        ("gan", "POST", "samples", {"n": "many"}, 422, "n"),
        ("gan", "POST", "samples", {"n": 3, "temperature": 2}, 422, "temperature"),
        ("gan", "POST", "q-values", {"observations": [[0, 0]]}, 422, "query"),
        ("gan", "GET", "values", None, 422, "query"),
        ("dqn", "POST", "q-values", {"observations": [[0.0, 1.0]]}, 422, "observations.0"),
        ("dqn", "POST", "q-values", {"observations": []}, 422, "observations"),
        ("dqn", "POST", "q-values", {"observations": [["a", 1, 2, 3]]}, 422, "observations.0.0"),
        ("dqn", "POST", "q-values", {"states": [0]}, 422, "states"),
        ("dqn", "POST", "q-values", {}, 422, ""),
        ("dqn", "POST", "actions", {"observations": [[0, 0, 0, 0, 0]]}, 422, "observations.0"),
        ("dqn", "POST", "samples", {"n": 2}, 422, "query"),
        ("dqn", "GET", "rewards", None, 422, "query"),
        ("vi", "POST", "q-values", {"states": [16]}, 422, "states.0"),
        ("vi", "POST", "q-values", {"states": [[4, 0]]}, 422, "states.0"),
        ("vi", "POST", "q-values", {"states": [-1]}, 422, "states.0"),
        ("vi", "POST", "q-values", {"observations": [[0.0]]}, 422, "observations"),
        ("vi", "POST", "rewards", {"states": [0]}, 422, "query"),
        ("irl", "POST", "rewards", {"states": [[9, 9]]}, 422, "states.0"),
        ("irl", "POST", "rewards", {"states": [[0, 1, 2]]}, 422, "states.0"),
        ("irl", "POST", "rewards", {"states": "all"}, 422, "states"),
    ],
)
def test_bad_queries(
    stack: Stack,
    models: dict[str, str],
    model: str,
    method: str,
    path: str,
    payload: dict[str, Any] | None,
    status: int,
    field: str,
) -> None:
    url = f"/v1/models/{models[model]}/{path}"
    body = (
        error(stack, method, url, status, json=payload)
        if payload is not None
        else error(stack, method, url, status)
    )
    if field:
        assert body.get("field", "").startswith(field), body


def test_non_finite_observations(stack: Stack, models: dict[str, str]) -> None:
    url = f"/v1/models/{models['dqn']}/q-values"
    for token in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
        raw = b'{"observations": [[0.0, ' + token + b", 0.0, 0.0]]}"
        body = error(
            stack, "POST", url, 422, content=raw, headers={"content-type": "application/json"}
        )
        assert "finite" in body["message"] or body["field"].startswith("observations"), body


def test_model_of_unfinished_job(stack: Stack) -> None:
    job = stack.submit("dqn", {"total_steps": 100_000})
    stack.client.post(f"/v1/jobs/{job['id']}/cancel")
    assert stack.wait_for(job["id"], timeout=60)["status"] == "cancelled"
    body = error(stack, "GET", f"/v1/models/{job['id']}", 409)
    assert body["code"] == "model_not_ready"
    error(stack, "POST", f"/v1/models/{job['id']}/q-values", 409, json={"states": [0]})


def test_missing_model_file_is_a_clear_503(stack: Stack) -> None:
    job = stack.submit("value_iteration", {"env": {"kind": "frozen_lake"}, "discount": 0.5})

    def succeeded() -> bool:  # polled through the list, which does not warm the model cache
        listed = stack.client.get("/v1/jobs", params={"status": "succeeded", "limit": 500})
        return any(j["id"] == job["id"] for j in listed.json()["data"])

    stack.wait_until(succeeded, 60, "the job to succeed")
    (stack.var_dir / "artifacts" / "models" / f"{job['id']}.pt").unlink()
    body = error(stack, "GET", f"/v1/models/{job['id']}/values", 503)
    assert body["code"] == "model_unavailable"
