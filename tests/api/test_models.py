"""Models as a resource: ids of their own, job ids still accepted, listing, download and
import, and named versions with aliases resolved on every request."""

from __future__ import annotations

import io
import pickle
from typing import Any

import torch

from tests.api.conftest import Api

GRID = {"kind": "grid", "layout": ["S..", "..G"], "slip": 0.0}


def test_a_succeeded_job_makes_a_model_with_its_own_id(api: Api) -> None:
    job = api.train("value_iteration", {"env": GRID})
    model_id = job["model_id"]
    assert model_id and model_id != job["id"]
    assert job["links"]["model"] == f"/v1/models/{model_id}"
    by_model = api.client.get(f"/v1/models/{model_id}").json()
    by_job = api.client.get(f"/v1/models/{job['id']}").json()  # old clients keep working
    assert by_model == by_job
    assert by_model["job_id"] == job["id"] and by_model["kind"] == "value_iteration"
    assert by_model["links"]["job"] == f"/v1/jobs/{job['id']}" and by_model["size_bytes"] > 0
    values = api.client.get(f"/v1/models/{job['id']}/values").json()
    assert values == api.client.get(f"/v1/models/{model_id}/values").json()

    listed = api.client.get("/v1/models").json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == model_id
    assert api.client.get("/v1/models", params={"algorithm": "dqn"}).json()["count"] == 0
    jobs = api.client.get("/v1/jobs").json()["data"]
    assert jobs[0]["model_id"] == model_id


def test_download_and_import_round_trip(api: Api) -> None:
    job = api.train("value_iteration", {"env": GRID})
    file = api.client.get(f"/v1/models/{job['model_id']}/file")
    assert file.status_code == 200 and file.headers["content-type"] == "application/octet-stream"
    imported = api.client.post("/v1/models", files={"file": ("m.pt", file.content)})
    assert imported.status_code == 201, imported.text
    copy = imported.json()
    assert copy["id"] != job["model_id"] and copy["job_id"] is None
    assert copy["kind"] == "value_iteration" and copy["sha256"]
    original = api.client.get(f"/v1/models/{job['model_id']}/values").json()
    assert api.client.get(f"/v1/models/{copy['id']}/values").json() == original


def test_import_refuses_what_is_not_a_model(api: Api) -> None:
    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (print, ("pwned",))

    pickled = pickle.dumps(Exploit())
    buffer = io.BytesIO()
    torch.save({"format": 1, "kind": "value_iteration", "metadata": {}, "state": {}}, buffer)
    for content in (b"not a model", pickled, buffer.getvalue()):
        body = api.error("POST", "/v1/models", 422, files={"file": ("x.pt", content)})
        assert body["code"] == "invalid_model_file" and body["field"] == "file"
    api.error("POST", "/v1/models", 422, files={"file": ("x.pt", b"")})
    assert api.client.get("/v1/models").json()["count"] == 0


def test_registry_names_versions_and_aliases(api: Api) -> None:
    first = api.train("value_iteration", {"env": GRID, "discount": 0.9})
    second = api.train("value_iteration", {"env": GRID, "discount": 0.5})
    v1 = api.client.post("/v1/registry/grid-solver/versions", json={"model_id": first["id"]})
    assert v1.status_code == 201 and v1.json()["version"] == 1
    assert v1.json()["model_id"] == first["model_id"]  # a job id resolves to its model
    v2 = api.client.post(
        "/v1/registry/grid-solver/versions", json={"model_id": second["model_id"]}
    ).json()
    assert v2["version"] == 2

    put = api.client.put("/v1/registry/grid-solver/aliases/production", json={"version": 1})
    assert put.status_code == 200 and put.json()["model_id"] == first["model_id"]
    assert api.client.get("/v1/models/grid-solver@production").json()["id"] == first["model_id"]
    values_v1 = api.client.get("/v1/models/grid-solver@1/values").json()
    assert api.client.get("/v1/models/grid-solver@production/values").json() == values_v1

    api.client.put("/v1/registry/grid-solver/aliases/production", json={"version": 2})
    moved = api.client.get("/v1/models/grid-solver@production/values").json()
    assert moved == api.client.get("/v1/models/grid-solver@2/values").json() != values_v1

    described = api.client.get("/v1/registry/grid-solver").json()
    assert described["latest_version"] == 2 and described["aliases"] == {"production": 2}
    assert [v["aliases"] for v in described["versions"]] == [[], ["production"]]
    names = api.client.get("/v1/registry").json()
    assert names["data"] == [{"name": "grid-solver", "latest_version": 2, "versions": 2}]
    model = api.client.get(f"/v1/models/{second['model_id']}").json()
    assert model["registered_as"] == [
        {"name": "grid-solver", "version": 2, "aliases": ["production"]}
    ]

    assert api.client.delete("/v1/registry/grid-solver/aliases/production").status_code == 204
    api.error("GET", "/v1/models/grid-solver@production", 404)
    api.error("DELETE", "/v1/registry/grid-solver/aliases/production", 404)


def test_registry_errors(api: Api) -> None:
    job = api.train("value_iteration", {"env": GRID})
    api.client.post("/v1/registry/solver/versions", json={"model_id": job["model_id"]})
    api.error("GET", "/v1/models/solver@3", 404)
    api.error("GET", "/v1/models/unknown@1", 404)
    api.error("GET", "/v1/registry/unknown", 404)
    api.error("POST", "/v1/registry/solver/versions", 404, json={"model_id": "nope"})
    api.error("POST", "/v1/registry/bad%20name/versions", 422, json={"model_id": job["id"]})
    api.error("PUT", "/v1/registry/solver/aliases/prod", 422, json={"version": 9})
    api.error("PUT", "/v1/registry/solver/aliases/12", 422, json={"version": 1})
    api.error("PUT", "/v1/registry/unknown/aliases/prod", 404, json={"version": 1})
    api.error("PUT", "/v1/registry/solver/aliases/prod", 422, json={"version": 0})


def test_a_job_can_register_its_model(api: Api) -> None:
    job = api.train(
        "value_iteration",
        {"env": GRID},
        register_as={"name": "auto", "aliases": ["staging"]},
    )
    assert job["register_as"] == {"name": "auto", "aliases": ["staging"]}
    assert api.client.get("/v1/models/auto@staging").json()["id"] == job["model_id"]
    assert api.client.get("/v1/models/auto@1").json()["job_id"] == job["id"]
