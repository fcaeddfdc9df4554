"""Submissions a client can retry safely: an `Idempotency-Key` makes a retry answer what the
first request created, and an answer that says "failed" means nothing was created."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tests.api.conftest import Api, make_api

SPEC = {"algorithm": "value_iteration", "config": {"env": {"kind": "frozen_lake"}}}


def test_a_retry_with_the_same_key_returns_the_first_job(api: Api) -> None:
    headers = {"Idempotency-Key": "submit-42"}
    first = api.client.post("/v1/jobs", json=SPEC, headers=headers)
    again = api.client.post("/v1/jobs", json=SPEC, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    other = api.client.post("/v1/jobs", json=SPEC, headers={"Idempotency-Key": "submit-43"})
    assert other.json()["id"] != first.json()["id"]
    assert api.client.post("/v1/jobs", json=SPEC).json()["id"] != first.json()["id"]
    assert api.client.get("/v1/jobs").json()["count"] == 3


def test_a_key_reused_for_another_request_is_a_conflict(api: Api) -> None:
    headers = {"Idempotency-Key": "k1"}
    api.client.post("/v1/jobs", json=SPEC, headers=headers)
    body = api.error("POST", "/v1/jobs", 409, json={**SPEC, "seed": 1}, headers=headers)
    assert body["code"] == "idempotency_key_reused" and body["field"] == "Idempotency-Key"
    api.error("POST", "/v1/jobs", 422, json=SPEC, headers={"Idempotency-Key": "has space"})
    assert api.client.get("/v1/jobs").json()["count"] == 1


def test_a_burst_of_retries_creates_each_job_once(api: Api) -> None:
    """20 keys, each sent 3 times at once from 12 threads: 20 jobs, each answered to all."""

    def submit(key: str) -> tuple[str, int, str]:
        r = api.client.post("/v1/jobs", json=SPEC, headers={"Idempotency-Key": key})
        return key, r.status_code, r.json().get("id", "")

    keys = [f"burst-{i}" for i in range(20)] * 3
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(submit, keys))
    assert {status for _, status, _ in answers} == {202}
    ids: dict[str, set[str]] = {}
    for key, _, job_id in answers:
        ids.setdefault(key, set()).add(job_id)
    assert all(len(found) == 1 for found in ids.values())
    assert api.client.get("/v1/jobs", params={"limit": 500}).json()["count"] == 20


def test_a_broker_that_is_down_does_not_fail_a_submission(tmp_path: Path) -> None:
    """The job exists once the answer is 202; the sweeper sends it when the broker is back."""
    api = make_api(tmp_path)
    api.settings.broker_url = "redis://127.0.0.1:1/0"  # nothing listens there
    r = api.client.post("/v1/jobs", json=SPEC)
    assert r.status_code == 202, r.text
    job = api.client.get(f"/v1/jobs/{r.json()['id']}").json()
    assert job["status"] == "queued" and job["enqueued_at"] is None


def test_runtime_limit_is_part_of_the_spec(api: Api) -> None:
    job = api.submit("value_iteration", {"env": {"kind": "frozen_lake"}}, max_runtime_seconds=90)
    assert job["max_runtime_seconds"] == 90
    api.error("POST", "/v1/jobs", 422, json={**SPEC, "max_runtime_seconds": 0})


def test_dataset_uploads_take_idempotency_keys(api: Api) -> None:
    def npz(seed: int) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, x=np.random.default_rng(seed).normal(size=(8, 2)))
        return buffer.getvalue()

    def upload(content: bytes, key: str) -> dict[str, object]:
        r = api.client.post(
            "/v1/datasets",
            files={"file": ("d.npz", content)},
            data={"kind": "samples"},
            headers={"Idempotency-Key": key},
        )
        assert r.status_code in (200, 201, 409), r.text
        return {"status": r.status_code, **r.json()}

    first = upload(npz(0), "up-1")
    again = upload(npz(0), "up-1")
    assert first["status"] == 201 and again["status"] == 200 and again["id"] == first["id"]
    conflict = upload(npz(1), "up-1")
    assert conflict["status"] == 409 and conflict["code"] == "idempotency_key_reused"
