"""Datasets as a resource: validated uploads stored once per content, listed beside the
built-in ones, named by jobs, and protected from deletion while a job needs them."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from tests.api.conftest import Api
from worker.runner import run_job


def npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def upload(api: Api, content: bytes, kind: str = "samples", name: str | None = None) -> Any:
    data = {"kind": kind} | ({"name": name} if name else {})
    return api.client.post("/v1/datasets", files={"file": ("data.npz", content)}, data=data)


def blob(seed: int = 0, n: int = 256) -> bytes:
    rng = np.random.default_rng(seed)
    return npz(x=rng.normal(size=(n, 3)).astype(np.float32), y=rng.integers(0, 2, size=n))


def test_upload_inspect_list_and_deduplicate(api: Api) -> None:
    first = upload(api, blob(), name="blobs")
    assert first.status_code == 201, first.text
    dataset = first.json()
    assert dataset["kind"] == "samples" and dataset["rows"] == 256 and dataset["name"] == "blobs"
    assert dataset["summary"]["arrays"]["x"]["shape"] == [256, 3]
    assert dataset["reference"] == {"kind": "uploaded", "id": dataset["id"]}
    assert first.headers["location"] == f"/v1/datasets/{dataset['id']}"

    again = upload(api, blob(), name="another name")
    assert again.status_code == 200 and again.json()["id"] == dataset["id"]
    assert upload(api, blob(seed=1)).status_code == 201

    assert api.client.get(f"/v1/datasets/{dataset['id']}").json()["sha256"] == dataset["sha256"]
    listed = api.client.get("/v1/datasets").json()
    builtins = [d for d in listed["data"] if d["builtin"]]
    assert {d["name"] for d in builtins} >= {"ring", "grid", "swissroll"}
    assert listed["count"] == len(builtins) + 2
    ring = next(d for d in builtins if d["name"] == "ring")
    assert ring["reference"] == {"kind": "ring"} and "gan" in ring["summary"]["algorithms"]
    assert api.client.get(f"/v1/datasets/{ring['id']}").json()["name"] == "ring"
    only = api.client.get("/v1/datasets", params={"builtin": False, "name": "blobs"}).json()
    assert [d["id"] for d in only["data"]] == [dataset["id"]]
    paged = api.client.get("/v1/datasets", params={"limit": 1, "offset": len(builtins)}).json()
    assert len(paged["data"]) == 1 and not paged["data"][0]["builtin"]


def test_bad_uploads_are_refused_and_nothing_is_stored(api: Api) -> None:
    cases = [
        (npz(x=np.array([[1.0, np.nan]])), "samples", "x"),
        (npz(y=np.arange(3)), "samples", "x"),
        (b"\x00\x01garbage", "samples", None),
        (blob(), "spreadsheets", "kind"),
    ]
    for content, kind, field in cases:
        r = upload(api, content, kind=kind)
        assert r.status_code == 422, r.text
        if field:
            assert r.json()["field"].startswith(field), r.json()
    r = upload(api, b"")
    assert r.status_code == 422
    assert api.client.get("/v1/datasets", params={"builtin": False}).json()["count"] == 0


def test_upload_limit(api: Api) -> None:
    api.settings.max_upload_bytes = 10_000
    try:
        r = upload(api, blob(n=2_000))
        assert r.status_code == 413 and r.json()["code"] in (
            "upload_too_large",
            "request_too_large",
        )
    finally:
        api.settings.max_upload_bytes = 256 * 1024 * 1024


def test_jobs_name_datasets_and_deletion_waits_for_them(api: Api) -> None:
    dataset = upload(api, blob()).json()
    transitions = npz(
        observations=np.zeros((4, 2), np.float32),
        actions=np.zeros(4, np.int64),
        rewards=np.zeros(4, np.float32),
        next_observations=np.zeros((4, 2), np.float32),
        terminated=np.zeros(4, bool),
    )
    other = upload(api, transitions, kind="transitions").json()
    wrong = api.error(
        "POST",
        "/v1/jobs",
        422,
        json={"algorithm": "gan", "config": {"dataset": {"kind": "uploaded", "id": other["id"]}}},
    )
    assert wrong["code"] == "dataset_kind_mismatch" and wrong["field"] == "config.dataset.id"

    job = api.submit(
        "gan",
        {"total_steps": 20, "batch_size": 32, "dataset": {"kind": "uploaded", "id": dataset["id"]}},
    )
    assert api.client.get(f"/v1/datasets/{dataset['id']}").json()["used_by"] == [job["id"]]
    body = api.error("DELETE", f"/v1/datasets/{dataset['id']}", 409)
    assert body["code"] == "dataset_in_use" and job["id"] in body["message"]

    assert run_job(job["id"], api.settings) == "succeeded"
    model = api.client.get(f"/v1/models/{job['id']}").json()
    assert model["shapes"]["data_dim"] == 3
    samples = api.client.post(f"/v1/models/{job['id']}/samples", json={"n": 4}).json()
    assert np.asarray(samples["samples"]).shape == (4, 3)

    assert api.client.delete(f"/v1/datasets/{dataset['id']}").status_code == 204
    api.error("GET", f"/v1/datasets/{dataset['id']}", 404)
    api.error("DELETE", f"/v1/datasets/{dataset['id']}", 404)
    api.error("DELETE", "/v1/datasets/builtin:ring", 409)
    # the model does not need its data any more
    assert api.client.get(f"/v1/models/{job['id']}/samples").status_code == 200


def test_a_gan_job_may_name_a_built_in_set(api: Api) -> None:
    """PacGAN's names stand for the built-in specs; an unknown one is a 422 naming them."""
    done = api.train("gan", {"dataset": "grid25"})
    assert done["config"]["dataset"] == {"kind": "grid", "side": 5, "spacing": 2.0, "std": 0.05}
    model = api.client.get(f"/v1/models/{done['model_id']}").json()
    assert model["summary"]["n_modes"] == 25
    body = api.error(
        "POST", "/v1/jobs", 422, json={"algorithm": "gan", "config": {"dataset": "grid26"}}
    )
    assert body["field"].endswith("dataset") and "grid25" in body["message"], body
