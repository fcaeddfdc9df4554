"""The generative queries over HTTP on models trained from uploaded data: samples and walks
as JSON, `.npy` and PNG (a grid of images, a scatter of 2-D points), the best or the last
generator, discriminator scores, and every bad query a 4xx JSON error with a message."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from ml.queries.figures import MIN_SIDE, PADDING
from tests.api.conftest import Api, make_api
from tests.api.test_datasets import npz, upload
from tests.ml.gan.test_best_and_health import BROKEN

N_IMAGES, N_CLASSES = 96, 4
TILE = MIN_SIDE + PADDING  # an 8x8 image's place in a grid


def images(seed: int = 0) -> bytes:
    """x[N, 1, 8, 8] in [-1, 1]: a bright bar whose row is the label, on a noisy background."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, size=N_IMAGES)
    x = rng.uniform(-1.0, -0.6, size=(N_IMAGES, 1, 8, 8)).astype(np.float32)
    x[np.arange(N_IMAGES), 0, 2 * y] = 1.0
    return npz(x=x, y=y)


def uploaded(api: Api, content: bytes) -> dict[str, str]:
    r = upload(api, content)
    assert r.status_code in (200, 201), r.text
    return {"kind": "uploaded", "id": r.json()["id"]}


@pytest.fixture(scope="module")
def models(shared_api: Api) -> dict[str, str]:
    """Model ids, trained once: `dcgan` and `cgan` on the uploaded images, `gan` on uploaded
    3-D points (no picture of them exists)."""
    digits = uploaded(shared_api, images())
    rng = np.random.default_rng(1)
    points = uploaded(shared_api, npz(x=rng.normal(size=(128, 3)).astype(np.float32)))
    return {
        "dcgan": shared_api.train("dcgan", {"dataset": digits})["model_id"],
        "cgan": shared_api.train("cgan", {"dataset": digits})["model_id"],
        "gan": shared_api.train("gan", {"dataset": points})["model_id"],
    }


def url(models: dict[str, str], kind: str, query: str) -> str:
    return f"/v1/models/{models[kind]}/{query}"


def png(response: Any) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(io.BytesIO(response.content))


def test_samples_as_json_npy_and_png(shared_api: Api, models: dict[str, str]) -> None:
    samples = url(models, "dcgan", "samples")
    body = shared_api.client.post(samples, json={"n": 16, "seed": 3}).json()
    assert body["sample_shape"] == [1, 8, 8] and body["n"] == 16 and body["seed"] == 3
    x = np.asarray(body["samples"])
    assert x.shape == (16, 64) and np.all(np.abs(x) <= 1.0)

    r = shared_api.client.post(samples, json={"n": 16, "seed": 3}, params={"format": "npy"})
    array = np.load(io.BytesIO(r.content), allow_pickle=False)
    assert array.shape == (16, 1, 8, 8) and array.dtype == np.float32
    np.testing.assert_allclose(array.reshape(16, 64), x, atol=1e-6)

    side = 4 * TILE + PADDING  # 16 images: 4 by 4
    for kwargs in ({"params": {"format": "png"}}, {"headers": {"accept": "image/png"}}):
        image = png(shared_api.client.post(samples, json={"n": 16, "seed": 3}, **kwargs))
        assert image.size == (side, side) and image.mode == "L"
    assert png(shared_api.client.get(samples, params={"format": "png"})).size == (
        MIN_SIDE + 2 * PADDING,
        MIN_SIDE + 2 * PADDING,
    )


def test_same_seed_same_samples(shared_api: Api, models: dict[str, str]) -> None:
    samples = url(models, "dcgan", "samples")

    def draw(seed: int, **more: Any) -> Any:
        return shared_api.client.post(samples, json={"n": 8, "seed": seed, **more}).json()

    assert draw(5)["samples"] == draw(5)["samples"]
    assert draw(5)["samples"] != draw(6)["samples"]
    first = shared_api.client.post(samples, json={"n": 4, "seed": 5}, params={"format": "png"})
    again = shared_api.client.post(samples, json={"n": 4, "seed": 5}, params={"format": "png"})
    assert first.content == again.content
    assert draw(5, generator="best")["samples"] == draw(5)["samples"]  # the default
    last = draw(5, generator="last")
    assert np.asarray(last["samples"]).shape == (8, 64) and last["sample_shape"] == [1, 8, 8]
    assert draw(5, generator="last")["samples"] == last["samples"]


def test_interpolations_as_json_and_png(shared_api: Api, models: dict[str, str]) -> None:
    walk = url(models, "dcgan", "interpolations")
    body = shared_api.client.post(walk, json={"seeds": [1, 2], "steps": 6}).json()
    assert body["sample_shape"] == [1, 8, 8] and body["steps"] == 6
    assert np.asarray(body["samples"]).shape == (6, 64)
    assert np.asarray(body["latents"]).shape == (6, 4)  # the tiny dcgan's latent_dim
    start = shared_api.client.post(url(models, "dcgan", "samples"), json={"n": 1, "seed": 1})
    np.testing.assert_allclose(body["samples"][0], start.json()["samples"][0], atol=1e-5)

    image = png(
        shared_api.client.post(walk, json={"seeds": [1, 2], "steps": 6}, params={"format": "png"})
    )
    assert image.size == (6 * TILE + PADDING, MIN_SIDE + 2 * PADDING)  # one row, a to b
    r = shared_api.client.post(
        walk, json={"seeds": [1, 2], "steps": 3, "generator": "last"}, params={"format": "npy"}
    )
    assert np.load(io.BytesIO(r.content), allow_pickle=False).shape == (3, 1, 8, 8)


def test_discriminator_scores_of_images(shared_api: Api, models: dict[str, str]) -> None:
    x = np.load(io.BytesIO(images()))["x"][:3].reshape(3, 64)
    r = shared_api.client.post(url(models, "dcgan", "discriminator"), json={"samples": x.tolist()})
    assert r.status_code == 200, r.text
    scores = r.json()["scores"]
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    old_name = url(models, "dcgan", "discriminator-scores")  # kept for existing clients
    assert shared_api.client.post(old_name, json={"samples": x.tolist()}).json()["scores"] == scores
    operations = shared_api.client.get("/openapi.json").json()["paths"]
    assert operations["/v1/models/{model}/discriminator-scores"]["post"]["deprecated"] is True
    assert "deprecated" not in operations["/v1/models/{model}/discriminator"]["post"]


def test_a_conditional_model_draws_the_classes_asked_for(
    shared_api: Api, models: dict[str, str]
) -> None:
    samples = url(models, "cgan", "samples")
    labels = [0, 1, 2, 3, 3]
    body = shared_api.client.post(samples, json={"n": 5, "seed": 0, "labels": labels}).json()
    assert body["sample_shape"] == [1, 8, 8] and len(body["samples"]) == 5
    image = png(
        shared_api.client.post(
            samples, json={"n": 5, "seed": 0, "labels": labels}, params={"format": "png"}
        )
    )
    assert image.size == (3 * TILE + PADDING, 2 * TILE + PADDING)
    walk = shared_api.client.post(
        url(models, "cgan", "interpolations"), json={"seeds": [0, 1], "steps": 3, "label": 2}
    )
    assert walk.status_code == 200 and len(walk.json()["samples"]) == 3


def test_points_of_three_dimensions_have_npy_but_no_png(
    shared_api: Api, models: dict[str, str]
) -> None:
    samples = url(models, "gan", "samples")
    body = shared_api.client.post(samples, json={"n": 4, "seed": 0}).json()
    assert body["sample_shape"] == [3]
    r = shared_api.client.post(samples, json={"n": 4, "seed": 0}, params={"format": "npy"})
    assert np.load(io.BytesIO(r.content), allow_pickle=False).shape == (4, 3)
    for query, request in (("samples", {"n": 4}), ("interpolations", {"seeds": [0, 1]})):
        error = shared_api.error(
            "POST", url(models, "gan", query), 422, json=request, params={"format": "png"}
        )
        assert error["field"] == "format" and "PNG needs images" in error["message"]
        assert "[3]" in error["message"]


@pytest.mark.parametrize(
    ("kind", "query", "request_", "field"),
    [
        ("dcgan", "samples", {"latents": [[0.0, 0.0, 0.0]]}, "latents"),  # latent_dim is 4
        ("dcgan", "interpolations", {"latents": [[0.0] * 5, [1.0] * 5]}, "latents"),
        ("dcgan", "samples", {"n": 2, "labels": [0, 1]}, "labels"),  # not conditional
        ("cgan", "samples", {"n": 2, "labels": [0, N_CLASSES]}, "labels"),
        ("cgan", "samples", {"n": 2, "labels": [0]}, "labels"),  # one per sample
        ("cgan", "interpolations", {"seeds": [0, 1], "label": N_CLASSES}, "labels"),
        ("dcgan", "samples", {"n": 10_001}, "n"),
        ("dcgan", "samples", {"n": 1, "colour": "red"}, "colour"),
        ("dcgan", "samples", {"n": 1, "generator": "worst"}, "generator"),
        ("dcgan", "samples", {"n": "2"}, "n"),
        ("dcgan", "interpolations", {"seeds": [0, 1], "steps": 1}, "steps"),
        ("dcgan", "discriminator", {"samples": [[0.0] * 63]}, "samples"),
        ("cgan", "discriminator", {"samples": [[0.0] * 64], "labels": [9]}, "labels"),
    ],
)
def test_bad_queries_are_4xx_json_errors(
    shared_api: Api,
    models: dict[str, str],
    kind: str,
    query: str,
    request_: dict[str, Any],
    field: str,
) -> None:
    error = shared_api.error("POST", url(models, kind, query), 422, json=request_)
    assert error["field"] is not None and error["field"].startswith(field), error


def test_a_format_the_query_does_not_answer_is_406(shared_api: Api, models: dict[str, str]) -> None:
    error = shared_api.error(
        "POST",
        url(models, "dcgan", "discriminator"),
        406,
        json={"samples": [[0.0] * 64]},
        params={"format": "png"},
    )
    assert error["field"] == "format"


def test_the_server_bounds_the_samples_of_one_request(tmp_path: Path) -> None:
    """MAX_SAMPLES bounds `n` and the number of latents, with a 422 naming the setting."""
    api = make_api(tmp_path, max_samples=5)
    samples = f"/v1/models/{api.train('gan')['model_id']}/samples"
    assert len(api.client.post(samples, json={"n": 5}).json()["samples"]) == 5
    error = api.error("POST", samples, 422, json={"n": 6})
    assert error["field"] == "n" and "MAX_SAMPLES" in error["message"] and "5" in error["message"]
    error = api.error("POST", samples, 422, json={"latents": [[0.0, 0.0]] * 6})
    assert error["field"] == "latents" and error["code"] == "too_many_samples"


def test_health_warnings_show_on_the_job_and_stop_on_ends_it(api: Api) -> None:
    """A generator 100x slower than its discriminator (`tests/ml/gan/test_best_and_health.py`'s
    broken run): the job says so in its warnings, and with stop_on it ends early, succeeded,
    with a model that still answers."""
    job = api.submit("dcgan", {**BROKEN, "stop_on": ["discriminator_wins"]})
    done = api.run(job["id"])
    assert done["status"] == "succeeded", done
    codes = [w["code"] for w in done["warnings"]]
    assert codes[0] == "discriminator_wins" and "stopped_early" in codes, done["warnings"]
    assert all(w["message"] and w["step"] >= 0 for w in done["warnings"])
    assert done["progress"]["step"] < BROKEN["total_steps"]
    samples = api.client.post(f"/v1/models/{done['model_id']}/samples", json={"n": 2})
    assert samples.status_code == 200 and samples.json()["sample_shape"] == [1, 8, 8]
