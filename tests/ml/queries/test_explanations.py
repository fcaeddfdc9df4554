"""The explanation queries on real (tiny) models of every kind that exposes a network: the
documented JSON shapes, a PNG of the figure's size, and clear errors."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

import ml
from ml.core.errors import QueryError
from ml.core.hooks import NullHooks
from ml.core.model import TrainedModel
from ml.queries import PNG, QUERIES, queries_for
from tests.tiny_configs import TINY_CONFIGS

PIXELS = {"env_id": "PixelGridWorld-v0", "network": "conv", "conv_channels": [4, 4]}
KINDS = {
    "dqn": ("dqn", {}),
    "dqn_conv": ("dqn", PIXELS),
    "td3": ("td3", {}),
    "dcgan": ("dcgan", {}),
    "cgan": ("cgan", {}),
    "gan": ("gan", {}),
    "deep_maxent_irl": ("deep_maxent_irl", {}),
    "maxent_irl": ("maxent_irl", {}),
}
IMAGES = {"dqn_conv", "dcgan", "cgan"}
EXPLANATIONS = ("saliency", "grad_cam", "activations", "embedding")


@pytest.fixture(scope="module")
def models() -> dict[str, TrainedModel]:
    trained = {}
    for kind, (name, overrides) in KINDS.items():
        algorithm = ml.ALGORITHMS[name]
        config = algorithm.config.model_validate({**TINY_CONFIGS[name], **overrides})
        trained[kind] = algorithm.run(config, seed=0, hooks=NullHooks())
    return trained


def png_size(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    image.verify()
    assert image.format == "PNG"
    return image.size


def answer(model: TrainedModel, name: str, request: dict[str, Any]) -> tuple[Any, bytes]:
    query = QUERIES[name]
    response = query.answer(model, request)
    return response, query.render(response, PNG)


def test_every_model_with_a_network_answers_the_explanations() -> None:
    for kind in ("dqn", "td3", "ddpg", "gan", "dcgan", "cgan", "wgan", "wgan_gp",
                 "maxent_irl", "deep_maxent_irl"):  # fmt: skip
        assert set(EXPLANATIONS) <= set(queries_for(ml.ALGORITHMS[kind].model)), kind
    for kind in ("value_iteration", "fqi"):  # tables and trees: no network to look inside
        assert not set(EXPLANATIONS) & set(queries_for(ml.ALGORITHMS[kind].model)), kind


@pytest.mark.parametrize("kind", list(KINDS))
def test_saliency(models: dict[str, TrainedModel], kind: str) -> None:
    model = models[kind]
    explained = model.explained()  # type: ignore[attr-defined]
    response, png = answer(model, "saliency", {"method": "gradients", "sanity_check": True})
    n, size = len(response.inputs), int(np.prod(response.input_shape))
    assert n == 4 and np.asarray(response.attributions).shape == (n, size)
    assert response.input_shape == list(explained.input_shape)
    assert len(response.outputs) == len(response.values) == n
    assert response.randomisation and all(
        -1.0 <= layer.rank_correlation <= 1.0 for layer in response.randomisation
    )
    width, height = png_size(png)
    assert width >= 500 and height >= 250
    complete, _ = answer(model, "saliency", {"method": "integrated_gradients", "seed": 1})
    assert complete.completeness_error is not None and len(complete.completeness_error) == n


@pytest.mark.parametrize("kind", list(KINDS))
def test_grad_cam_answers_for_convolutional_networks_only(
    models: dict[str, TrainedModel], kind: str
) -> None:
    model = models[kind]
    if kind not in IMAGES:
        with pytest.raises(QueryError, match="Grad-CAM explains convolutional networks"):
            QUERIES["grad_cam"].answer(model, {})
        return
    response, png = answer(model, "grad_cam", {})
    height, width = response.input_shape[-2:]
    maps = np.asarray(response.maps)
    assert maps.shape == (4, height, width) and maps.min() >= 0.0 and maps.max() <= 1.0
    assert png_size(png) == (640, 4 * 260 + 50)  # 6.4 x (2.6 per input + 0.5) inches
    with pytest.raises(QueryError) as error:
        QUERIES["grad_cam"].answer(model, {"layer": "nope"})
    assert error.value.field == "layer" and "choose from" in str(error.value)


@pytest.mark.parametrize("kind", list(KINDS))
def test_activations(models: dict[str, TrainedModel], kind: str) -> None:
    model = models[kind]
    response, png = answer(model, "activations", {})
    assert response.layers and all(
        len(layer.values) == 4 and len(layer.values[0]) == int(np.prod(layer.shape))
        for layer in response.layers
    )
    png_size(png)
    one = QUERIES["activations"].answer(model, {"layer": response.layers[0].name})
    assert [layer.name for layer in one.layers] == [response.layers[0].name]


@pytest.mark.parametrize("kind", list(KINDS))
def test_embedding(models: dict[str, TrainedModel], kind: str) -> None:
    model = models[kind]
    response, png = answer(model, "embedding", {"method": "pca", "n": 60})
    points = np.asarray(response.coordinates)
    assert points.shape[1] == 2 and len(response.colours) == len(points) >= 3
    assert response.explained_variance_ratio is not None
    if response.categories is not None:
        assert set(np.unique(response.colours)) <= set(range(len(response.categories)))
    assert png_size(png) == (640, 520)


def test_gan_embedding_sets_real_beside_generated(models: dict[str, TrainedModel]) -> None:
    response = QUERIES["embedding"].answer(models["gan"], {"method": "tsne", "n": 40,
                                                            "perplexity": 5})  # fmt: skip
    assert response.categories == ["real", "generated"] and len(response.coordinates) == 80
    assert response.explained_variance_ratio is None


def test_inputs_are_checked_against_the_model(models: dict[str, TrainedModel]) -> None:
    saliency = QUERIES["saliency"]
    with pytest.raises(QueryError) as error:
        saliency.answer(models["dqn"], {"observations": [[0.0, 0.0]]})
    assert error.value.field == "observations.0" and "4 numbers" in str(error.value)
    with pytest.raises(QueryError) as error:
        saliency.answer(models["dqn"], {"samples": [[0.0, 0.0, 0.0, 0.0]]})
    assert error.value.field == "samples"
    with pytest.raises(QueryError) as error:
        saliency.answer(models["dqn"], {"observations": [[0.0] * 4], "samples": [[0.0] * 4]})
    with pytest.raises(QueryError) as error:
        saliency.answer(models["dcgan"], {"labels": [1, 2, 3, 4]})
    assert error.value.field == "labels"
    with pytest.raises(QueryError) as error:
        QUERIES["embedding"].answer(models["dqn"], {"method": "tsne", "n": 20})
    assert "91 points" in str(error.value)


def test_a_reward_is_explained_by_states_through_their_features(
    models: dict[str, TrainedModel],
) -> None:
    model = models["deep_maxent_irl"]
    by_state = QUERIES["saliency"].answer(model, {"states": [0, [1, 1]]})
    assert len(by_state.inputs) == 2
    features = by_state.inputs
    by_features = QUERIES["saliency"].answer(model, {"features": features})
    assert np.allclose(by_state.attributions, by_features.attributions)
    rewards = model.reward_of_features(np.asarray(features))  # type: ignore[attr-defined]
    assert np.allclose(by_state.values, rewards, atol=1e-5)
    with pytest.raises(QueryError) as error:
        QUERIES["saliency"].answer(models["dqn"], {"states": [0]})
    assert error.value.field == "states"


def test_a_conditional_discriminator_is_explained_per_label(
    models: dict[str, TrainedModel],
) -> None:
    model = models["cgan"]
    samples = model.generate(2, 0)  # type: ignore[attr-defined]
    zero = QUERIES["saliency"].answer(model, {"samples": samples.tolist(), "labels": [0, 0]})
    five = QUERIES["saliency"].answer(model, {"samples": samples.tolist(), "labels": [5, 5]})
    assert zero.values != five.values


@pytest.mark.parametrize("kind", list(KINDS))
def test_gradient_flow(models: dict[str, TrainedModel], kind: str) -> None:
    response, png = answer(models[kind], "gradient_flow", {})
    layers = {layer.name: layer for layer in response.layers}
    assert layers and all(layer.output_grad_norm >= 0.0 for layer in response.layers)
    assert any(layer.weight_grad_norm is not None for layer in response.layers)
    root = models[kind].explained().root  # type: ignore[attr-defined]
    assert set(layers) <= {name for name, _ in root.named_modules()}  # named as in the model
    png_size(png)


def test_gradient_flow_shows_sigmoid_gradients_vanish_where_relu_passes_them() -> None:
    ratios = {}
    for act in ("sigmoid", "relu"):
        algorithm = ml.ALGORITHMS["dqn"]
        config = algorithm.config.model_validate(
            {**TINY_CONFIGS["dqn"], "total_steps": 200, "hidden": [32] * 5, "activation": act}
        )
        model = algorithm.run(config, seed=0, hooks=NullHooks())
        layers = QUERIES["gradient_flow"].answer(model, {}).layers
        norms = [layer.weight_grad_norm for layer in layers if layer.weight_grad_norm]
        ratios[act] = norms[0] / norms[-1]  # the first layer's gradient against the last's
    assert ratios["sigmoid"] < 1e-3 < ratios["relu"] / 10


def test_ragged_inputs_are_a_clear_error(models: dict[str, TrainedModel]) -> None:
    with pytest.raises(QueryError) as error:
        QUERIES["saliency"].answer(models["dqn"], {"observations": [[0.0] * 4, [0.0] * 3]})
    assert error.value.field == "observations.1"
    with pytest.raises(QueryError) as error:
        QUERIES["embedding"].answer(models["gan"], {"samples": [[0.0, 0.0]] * 3 + [[1.0]]})
    assert error.value.field == "samples.3"
