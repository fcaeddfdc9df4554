"""Declared queries over HTTP: one route per query with no per-query code in `api/`, content
negotiation, GET where no input is needed, heavy queries on a worker with reused results."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, Field

import ml.queries
from ml.core.model import TrainedModel
from ml.queries import Query
from tests.api.conftest import Api, make_api
from worker.runner import run_job


# -- a toy model kind and a toy query, declared outside api/ ------------------------------------
class ToyModel(TrainedModel):
    """Multiplies what it is given by a learned (here: stored) scale."""

    kind: ClassVar[str] = "toy_scaler"

    def __init__(self, metadata: dict[str, Any], scale: float) -> None:
        super().__init__(metadata)
        self.scale = scale

    def scale_values(self, values: list[float]) -> list[float]:
        return [self.scale * v for v in values]

    def state(self) -> dict[str, Any]:
        return {"scale": self.scale}

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> ToyModel:
        return cls(metadata, float(state["scale"]))


class ScaleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: list[float] = Field(min_length=1, max_length=10)


class ScaleResponse(BaseModel):
    values: list[float]


TOY_QUERY = Query(
    name="scaled",
    summary="Scale numbers",
    description="A toy query.",
    request=ScaleRequest,
    response=ScaleResponse,
    needs=("scale_values",),
    run=lambda model, request: ScaleResponse(values=model.scale_values(request.values)),
    renderers={"text/csv": lambda r: ",".join(map(str, r.values)).encode()},
)


@pytest.fixture
def toy_api(tmp_path: Path) -> Iterator[Api]:
    ml.queries.register(TOY_QUERY)
    try:
        yield make_api(tmp_path)  # the app is built after the query was registered
    finally:
        del ml.queries.QUERIES[TOY_QUERY.name]


def test_a_toy_query_is_served_without_touching_api(toy_api: Api) -> None:
    toy = ToyModel({"kind": "toy_scaler", "algorithm": "toy", "shapes": {}}, scale=3.0)
    upload = toy_api.client.post(
        "/v1/models", files={"file": ("toy.pt", toy.to_bytes(), "application/octet-stream")}
    )
    assert upload.status_code == 201, upload.text
    model = upload.json()
    assert model["kind"] == "toy_scaler" and model["queries"] == ["scaled"]
    url = f"/v1/models/{model['id']}/scaled"
    assert toy_api.client.post(url, json={"values": [1, 2]}).json() == {"values": [3.0, 6.0]}
    csv = toy_api.client.post(url, json={"values": [1]}, headers={"accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv") and csv.text == "3.0"
    toy_api.error("POST", url, 422, json={"values": []})
    body = toy_api.error("POST", url, 406, json={"values": [1]}, headers={"accept": "image/png"})
    assert "text/csv" in body["message"] and "application/json" in body["message"]
    schema = toy_api.client.get("/openapi.json").json()
    operation = schema["paths"]["/v1/models/{model}/scaled"]["post"]
    assert operation["operationId"] == "query_scaled" and operation["summary"] == "Scale numbers"


# -- the built-in queries ----------------------------------------------------------------------
def test_every_query_is_in_the_openapi_document(shared_api: Api) -> None:
    paths = shared_api.client.get("/openapi.json").json()["paths"]
    for query in ml.queries.QUERIES.values():
        ops = paths[f"/v1/models/{{model}}/{query.name}"]
        assert ops["post"]["operationId"] == f"query_{query.name.replace('-', '_')}"
        assert ("get" in ops) == (not query.takes_input)
        response = ops["post"]["responses"]["200"]["content"]
        assert set(response) == set(query.media_types)


def test_algorithms_list_their_queries_with_schemas(shared_api: Api) -> None:
    body = shared_api.client.get("/v1/algorithms/dqn").json()
    assert set(body["queries"]) >= {"q-values", "actions", "evaluate"}
    details = {q["name"]: q for q in body["query_details"]}
    assert details["q-values"]["request_schema"]["properties"]["observations"]
    assert details["q-values"]["methods"] == ["POST"]
    vi = shared_api.client.get("/v1/algorithms/value_iteration").json()
    assert {q["name"]: q["methods"] for q in vi["query_details"]}["values"] == ["GET", "POST"]


def test_content_negotiation(shared_api: Api, trained: dict[str, dict[str, Any]]) -> None:
    url = f"/v1/models/{trained['gan']['model_id']}/samples"
    as_json = shared_api.client.post(url, json={"n": 3, "seed": 1}).json()["samples"]
    for kwargs in ({"headers": {"accept": "application/x-npy"}}, {"params": {"format": "npy"}}):
        r = shared_api.client.post(url, json={"n": 3, "seed": 1}, **kwargs)
        assert r.headers["content-type"] == "application/x-npy"
        array = np.load(io.BytesIO(r.content), allow_pickle=False)
        assert array.shape == (3, 2) and np.allclose(array, as_json)
    weighted = {"accept": "application/x-npy;q=0.5, application/json"}
    assert (
        shared_api.client.post(url, json={"n": 1}, headers=weighted)
        .headers["content-type"]
        .startswith("application/json")
    )
    body = shared_api.error("POST", url, 406, json={"n": 1}, params={"format": "csv"})
    assert body["field"] == "format" and "npy, png" in body["message"]
    shared_api.error("POST", url, 406, json={"n": 1}, headers={"accept": "text/html"})


def test_rewards_answer_get_and_post(shared_api: Api, trained: dict[str, dict[str, Any]]) -> None:
    url = f"/v1/models/{trained['maxent_irl']['model_id']}/rewards"
    table = shared_api.client.get(url).json()
    assert len(table["rewards"]) == table["shape"][0] * table["shape"][1]
    some = shared_api.client.post(url, json={"states": [0, [0, 1]]}).json()["rewards"]
    assert some == [table["rewards"][0], table["rewards"][1]]


def test_discriminator_scores(shared_api: Api, trained: dict[str, dict[str, Any]]) -> None:
    url = f"/v1/models/{trained['gan']['model_id']}/discriminator-scores"
    scores = shared_api.client.post(url, json={"samples": [[1.0, 0.0], [0.0, 0.0]]}).json()
    assert len(scores["scores"]) == 2 and all(0.0 <= s <= 1.0 for s in scores["scores"])


def test_heavy_queries_run_on_a_worker_and_are_reused(api: Api) -> None:
    job = api.train("dqn")
    url = f"/v1/models/{job['model_id']}/evaluate"
    quick = api.client.post(url, json={"episodes": 2, "seed": 5})
    assert quick.status_code == 200 and len(quick.json()["returns"]) == 2

    first = api.client.post(url, json={"episodes": 21, "seed": 5})
    assert first.status_code == 202, first.text
    location = first.headers["location"]
    assert location == first.json()["location"] and location.startswith("/v1/query-results/")
    assert api.client.get(location).status_code == 202  # queued: no worker has run it yet
    again = api.client.post(url, json={"episodes": 21, "seed": 5})
    assert again.headers["location"] == location  # the pending result is shared

    result_id = location.rsplit("/", 1)[1]
    assert run_job(result_id, api.settings, worker="query-worker") == "succeeded"
    done = api.client.get(location)
    assert done.status_code == 200 and len(done.json()["returns"]) == 21
    assert done.json()["returns"][:2] == quick.json()["returns"]  # same seed, same episodes
    assert api.client.post(url, json={"episodes": 21, "seed": 5}).headers["location"] == location
    other = api.client.post(url, json={"episodes": 21, "seed": 6})
    assert other.headers["location"] != location
    api.error("GET", "/v1/query-results/nope", 404)
    assert api.client.get("/v1/jobs").json()["count"] == 1  # query jobs are not training jobs
