"""The latent-space queries of every GAN variant: decoding given latents, and interpolating
between two seeds' (or two given) latents, linearly or spherically."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

import ml
from ml.core.errors import QueryError
from ml.core.hooks import NullHooks
from ml.queries import queries_for
from ml.queries.generative import (
    InterpolationsRequest,
    SamplesRequest,
    interpolate,
    interpolations,
    samples,
)
from tests.tiny_configs import TINY_CONFIGS


@pytest.fixture(scope="module", params=["gan", "wgan", "wgan_gp"])
def model(request: pytest.FixtureRequest) -> Any:
    algorithm = ml.ALGORITHMS[request.param]
    config = algorithm.config.model_validate(TINY_CONFIGS[request.param])
    return algorithm.run(config, seed=0, hooks=NullHooks())


def test_every_variant_answers_interpolations(model: Any) -> None:
    assert "interpolations" in queries_for(type(model))


def test_a_seed_s_latent_decodes_to_that_seed_s_sample(model: Any) -> None:
    z = model.latents(3, seed=5)
    assert z.shape == (3, model.latent_dim)
    np.testing.assert_allclose(model.generate_from(z), model.generate(3, seed=5), atol=1e-6)
    given = samples(model, SamplesRequest(latents=z.tolist()))
    assert given.n == 3 and given.seed is None
    np.testing.assert_allclose(given.samples, model.generate(3, seed=5), atol=1e-6)


def test_interpolation_between_seeds_starts_and_ends_at_their_samples(model: Any) -> None:
    answer = interpolations(model, InterpolationsRequest(seeds=[1, 2], steps=6))
    assert answer.steps == 6 and len(answer.samples) == 6 and answer.method == "slerp"
    ends = np.array([answer.samples[0], answer.samples[-1]])
    expected = np.concatenate([model.generate(1, seed=1), model.generate(1, seed=2)])
    np.testing.assert_allclose(ends, expected, atol=1e-5)


def test_slerp_keeps_the_norm_and_linear_walks_straight() -> None:
    za, zb = np.array([3.0, 0.0]), np.array([0.0, 3.0])
    spherical = interpolate(za, zb, 5, "slerp")
    np.testing.assert_allclose(np.linalg.norm(spherical, axis=1), 3.0)
    np.testing.assert_allclose(spherical[2], [3 / np.sqrt(2), 3 / np.sqrt(2)])
    straight = interpolate(za, zb, 3, "linear")
    np.testing.assert_allclose(straight, np.array([[3.0, 0.0], [1.5, 1.5], [0.0, 3.0]]))
    same = interpolate(za, za, 3, "slerp")  # no great circle: walks straight, stays put
    np.testing.assert_allclose(same, np.stack([za, za, za]))


@pytest.mark.parametrize(
    "body",
    [
        {"steps": 4},
        {"seeds": [1, 2], "latents": [[0.0], [1.0]]},
        {"seeds": [1]},
        {"seeds": [1, -2]},
        {"seeds": [1, 2], "steps": 1},
        {"seeds": [1, 2], "method": "cubic"},
    ],
)
def test_bad_interpolation_requests_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        InterpolationsRequest.model_validate(body)


def test_latents_of_the_wrong_size_are_refused(model: Any) -> None:
    wrong = [[0.0] * (model.latent_dim + 1)] * 2
    with pytest.raises(QueryError):
        interpolations(model, InterpolationsRequest(latents=wrong))
    with pytest.raises(QueryError):
        samples(model, SamplesRequest(latents=wrong))
    with pytest.raises(ValidationError):
        SamplesRequest.model_validate({"latents": [[0.0] * model.latent_dim], "n": 2})
