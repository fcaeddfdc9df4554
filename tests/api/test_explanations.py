"""The explanation queries over HTTP: JSON and PNG (GIF for an episode) by content
negotiation, plain GETs that explain inputs of the model's own, t-SNE on a worker with its
result reused, and 422s that name the field."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.api.conftest import Api
from worker.runner import run_job

NAMES = ("dqn", "dcgan", "value_iteration", "deep_maxent_irl")


@pytest.fixture(scope="module")
def models(shared_api: Api) -> dict[str, str]:
    return {name: shared_api.train(name)["model_id"] for name in NAMES}


def image(data: bytes, kind: str) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    assert picture.format == kind
    return picture


def test_saliency_answers_json_and_png(shared_api: Api, models: dict[str, str]) -> None:
    url = f"/v1/models/{models['dqn']}/saliency"
    own = shared_api.client.get(url)
    assert own.status_code == 200, own.text
    assert np.asarray(own.json()["attributions"]).shape == (4, 4)
    observations = [[0.0, 0.1, 0.05, -0.2], [0.1, 0.0, -0.05, 0.3]]
    body: dict[str, Any] = {"observations": observations, "method": "gradients"}
    answer = shared_api.client.post(url, json=body).json()
    assert np.allclose(answer["inputs"], observations)
    assert answer["input_names"][2] == "pole angle"
    png = shared_api.client.post(url, json=body, headers={"accept": "image/png"})
    assert png.headers["content-type"] == "image/png"
    assert image(png.content, "PNG").size[0] >= 500


def test_grad_cam_of_the_dcgan_discriminator(shared_api: Api, models: dict[str, str]) -> None:
    url = f"/v1/models/{models['dcgan']}/grad_cam"
    answer = shared_api.client.get(url).json()
    assert np.asarray(answer["maps"]).shape == (4, 8, 8)
    png = shared_api.client.get(url, params={"format": "png"})
    assert image(png.content, "PNG").size == (640, 1090)
    body = shared_api.error("GET", f"/v1/models/{models['dqn']}/grad_cam", 422)
    assert "convolutional" in body["message"]


def test_errors_name_the_field(shared_api: Api, models: dict[str, str]) -> None:
    dqn = f"/v1/models/{models['dqn']}"
    body = shared_api.error("POST", f"{dqn}/saliency", 422, json={"observations": [[1.0]]})
    assert body["field"] == "observations.0" and "4 numbers" in body["message"]
    body = shared_api.error("POST", f"{dqn}/saliency", 422, json={"method": "occlusion"})
    assert body["field"] == "method"
    body = shared_api.error("POST", f"{dqn}/activations", 422, json={"layer": "nope"})
    assert body["field"] == "layer" and "body.0" in body["message"]
    body = shared_api.error(
        "POST", f"{dqn}/embedding", 422, json={"method": "tsne", "n": 50, "perplexity": 30}
    )
    assert body["field"] == "perplexity" and "91 points" in body["message"]
    vi = f"/v1/models/{models['value_iteration']}"
    body = shared_api.error("GET", f"{vi}/saliency", 422)  # a table has no network
    assert body["code"] == "unsupported_query"


def test_embedding_tsne_runs_on_a_worker_and_is_reused(
    shared_api: Api, models: dict[str, str]
) -> None:
    url = f"/v1/models/{models['deep_maxent_irl']}/embedding"
    quick = shared_api.client.post(url, json={"method": "pca"})
    assert quick.status_code == 200 and quick.json()["colour_label"] == "learned reward"
    request = {"method": "tsne", "perplexity": 5, "n": 100}
    first = shared_api.client.post(url, json=request, params={"format": "png"})
    assert first.status_code == 202, first.text
    location = first.headers["location"]
    assert run_job(location.rsplit("/", 1)[1], shared_api.settings, worker="q") == "succeeded"
    done = shared_api.client.get(location)
    assert done.status_code == 200 and done.headers["content-type"] == "image/png"
    image(done.content, "PNG")
    again = shared_api.client.post(url, json=request, params={"format": "png"})
    assert again.headers["location"] == location


def test_confusion_matrix_and_render(shared_api: Api, models: dict[str, str]) -> None:
    vi = f"/v1/models/{models['value_iteration']}"
    matrix = shared_api.client.get(f"{vi}/confusion_matrix").json()
    assert matrix["matrix"] == "actions" and matrix["accuracy"] == 1.0
    png = shared_api.client.get(f"{vi}/confusion_matrix", params={"format": "png"})
    image(png.content, "PNG")
    episode = shared_api.client.get(f"{vi}/render").json()
    gif = shared_api.client.get(f"{vi}/render", headers={"accept": "image/gif"})
    assert gif.headers["content-type"] == "image/gif"
    animation = image(gif.content, "GIF")
    assert getattr(animation, "n_frames", 1) == episode["frames"]
    assert animation.size == (episode["width"], episode["height"])
