"""Training curves through HTTP: a job's metrics as JSON or PNG (`Accept` or `?format=`),
chosen by name and smoothed, several jobs compared, and the bad requests 4xx."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from tests.api.conftest import Api


def png_size(content: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(content))
    image.verify()
    return Image.open(io.BytesIO(content)).size


@pytest.fixture(scope="module")
def runs(shared_api: Api) -> list[dict[str, Any]]:
    """Two short GAN runs with different seeds and names."""
    return [shared_api.train("gan", seed=seed, name=f"ring-{seed}") for seed in (0, 1)]


def test_a_jobs_curves_as_png(shared_api: Api, runs: list[dict[str, Any]]) -> None:
    url = f"/v1/jobs/{runs[0]['id']}/metrics"
    series = shared_api.client.get(url).json()["metrics"]
    assert "losses/generator" in series
    by_header = shared_api.client.get(url, headers={"Accept": "image/png"})
    by_format = shared_api.client.get(url, params={"format": "png"})
    assert by_header.status_code == 200 and by_header.headers["content-type"] == "image/png"
    assert by_header.content == by_format.content  # the same figure, byte for byte
    width, height = png_size(by_header.content)
    panels = min(3, len(series))
    assert width == 460 * panels and height >= 300
    one = shared_api.client.get(url, params={"format": "png", "name": "losses/generator"})
    assert png_size(one.content) == (460, 300 + 40)  # one panel, and the title
    raw = shared_api.client.get(url, params={"format": "png", "smoothing": 0})
    assert raw.status_code == 200 and png_size(raw.content) == (width, height)


def test_a_job_with_no_metrics_yet_draws_a_figure(shared_api: Api) -> None:
    job = shared_api.submit("gan", {"total_steps": 10})  # queued: nothing reported yet
    r = shared_api.client.get(f"/v1/jobs/{job['id']}/metrics", params={"format": "png"})
    assert r.status_code == 200 and png_size(r.content)[0] > 0
    assert shared_api.client.get(f"/v1/jobs/{job['id']}/metrics").json()["metrics"] == {}


def test_jobs_compared(shared_api: Api, runs: list[dict[str, Any]]) -> None:
    ids = [run["id"] for run in runs]
    params: dict[str, Any] = {"job": ids, "name": ["losses/generator", "losses/discriminator"]}
    body = shared_api.client.get("/v1/jobs/compare", params=params).json()
    assert list(body["jobs"]) == ids
    assert set(body["jobs"][ids[0]]["metrics"]) == {"losses/generator", "losses/discriminator"}
    figure = shared_api.client.get("/v1/jobs/compare", params={**params, "format": "png"})
    assert figure.status_code == 200 and png_size(figure.content) == (920, 300)


def test_bad_curve_requests(shared_api: Api, runs: list[dict[str, Any]]) -> None:
    url = f"/v1/jobs/{runs[0]['id']}/metrics"
    body = shared_api.error("GET", url, 422, params={"format": "png", "smoothing": 1})
    assert body["field"] == "smoothing"
    body = shared_api.error("GET", url, 406, params={"format": "npy"})
    assert body["field"] == "format" and "json, png" in body["message"]
    body = shared_api.error("GET", url, 406, headers={"Accept": "text/html"})
    assert body["field"] == "accept"
    body = shared_api.error("GET", "/v1/jobs/compare", 422)
    assert body["field"] == "job"
    body = shared_api.error("GET", "/v1/jobs/compare", 422, params={"job": ["x"] * 9})
    assert body["field"] == "job" and "at most 8" in body["message"]
    body = shared_api.error("GET", "/v1/jobs/compare", 404, params={"job": [runs[0]["id"], "nope"]})
    assert body["code"] == "job_not_found"


def test_grid_heatmaps_of_values_and_rewards(shared_api: Api) -> None:
    """`values` and `rewards` answer a heatmap for the whole table of a 2-D world; a subset
    of states, or a world that is not 2-D, is a 422 naming the format."""
    solved = shared_api.train("value_iteration", {"env": {"layout": ["S.#", "..G"]}})
    url = f"/v1/models/{solved['model_id']}/values"
    figure = shared_api.client.get(url, headers={"Accept": "image/png"})
    assert figure.status_code == 200 and png_size(figure.content)[0] > 200
    body = shared_api.error("POST", url, 422, json={"states": [0]}, headers={"Accept": "image/png"})
    assert body["field"] == "format" and "whole table of a 2-D world" in body["message"]
    taxi = shared_api.train("value_iteration", {"env": {"kind": "taxi"}, "discount": 0.9})
    body = shared_api.error(
        "GET", f"/v1/models/{taxi['model_id']}/values", 422, params={"format": "png"}
    )
    assert body["field"] == "format"
    learned = shared_api.train("maxent_irl")
    reward = shared_api.client.get(
        f"/v1/models/{learned['model_id']}/rewards", params={"format": "png"}
    )
    assert reward.status_code == 200 and png_size(reward.content)[0] > 200
