"""Models, datasets and heavy queries through real processes and real storage: the API and a
worker that share nothing but the database, the broker and the artifact store (a folder in
the embedded stack, a SeaweedFS bucket in the PostgreSQL + Redis one). The HTTP contract of
these resources is tested in-process in `tests/api`."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest

from store import models
from store.db import session_factory, session_scope
from tests.integration.stack import Stack

pytestmark = pytest.mark.integration


def test_uploaded_data_reaches_the_worker_and_the_model_comes_back(stack: Stack) -> None:
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez(buffer, x=rng.normal(size=(300, 3)).astype(np.float32))
    upload = stack.client.post(
        "/v1/datasets", files={"file": ("x.npz", buffer.getvalue())}, data={"kind": "samples"}
    )
    assert upload.status_code in (200, 201), upload.text
    dataset = upload.json()
    config = {"total_steps": 30, "batch_size": 32, "eval_interval": 30, "eval_samples": 100}
    job = stack.run(
        "gan",
        config | {"dataset": dataset["reference"]},
        register_as={"name": f"blobs-{stack.name}", "aliases": ["production"]},
    )
    assert job["model_id"] and job["model_id"] != job["id"]
    samples = stack.client.post(
        f"/v1/models/blobs-{stack.name}@production/samples", json={"n": 4}
    ).json()["samples"]
    assert np.asarray(samples).shape == (4, 3)
    exported = stack.client.get(f"/v1/models/{job['model_id']}/file")
    assert exported.status_code == 200
    imported = stack.client.post("/v1/models", files={"file": ("m.pt", exported.content)})
    assert imported.status_code == 201, imported.text


def test_heavy_query_runs_on_the_query_queue(stack: Stack) -> None:
    config = {"total_steps": 300, "learning_starts": 100, "eval_interval": 300, "eval_episodes": 1}
    job = stack.run("dqn", config)
    r = stack.client.post(f"/v1/models/{job['model_id']}/evaluate", json={"episodes": 25})
    assert r.status_code == 202, r.text
    location = r.headers["location"]
    deadline = time.monotonic() + 60
    while (result := stack.client.get(location)).status_code == 202:
        assert time.monotonic() < deadline, stack.logs()
        time.sleep(0.2)
    assert result.status_code == 200, result.text
    assert len(result.json()["returns"]) == 25


def test_missing_model_file_is_a_clear_503(stack: Stack) -> None:
    job = stack.submit("value_iteration", {"env": {"kind": "frozen_lake"}, "discount": 0.5})

    def succeeded() -> bool:  # polled through the list, which does not warm the model cache
        listed = stack.client.get("/v1/jobs", params={"status": "succeeded", "limit": 500})
        return any(j["id"] == job["id"] for j in listed.json()["data"])

    stack.wait_until(succeeded, 60, "the job to succeed")
    with session_scope(session_factory(stack.database_url)) as session:
        uri = models.resolve(session, job["id"]).artifact_uri
    artifacts = stack.artifacts()
    assert artifacts.exists(uri)
    artifacts.delete(uri)
    body = stack.client.get(f"/v1/models/{job['id']}/values")
    assert body.status_code == 503 and body.json()["code"] == "model_unavailable"
