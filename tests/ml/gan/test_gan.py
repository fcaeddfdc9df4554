"""The GAN: datasets and metrics, learning on the ring, uploaded samples, and the model.

Save/load, determinism, stop/resume and config rejection are checked for every algorithm in
tests/ml/test_algorithms.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from ml.core.errors import ConfigError, QueryError
from ml.core.hooks import NullHooks, RecordingHooks
from ml.core.model import from_payload
from ml.data import Dataset, UploadedDataset
from ml.gan.datasets import RingDataset, ring_means, sample_ring
from ml.gan.gan import ALGORITHM, GANConfig, GANModel, discriminator_step, r1_penalty, train
from ml.gan.metrics import mmd_rbf, mode_coverage
from tests.tiny_configs import TINY_CONFIGS

TINY = TINY_CONFIGS["gan"]


@pytest.fixture(scope="module")
def tiny_model() -> GANModel:
    return train(GANConfig(**TINY), seed=0, hooks=NullHooks())


def blobs(n: int = 600, d: int = 3, seed: int = 0) -> Dataset:
    """An uploaded `samples` dataset: two Gaussian blobs in d dimensions, with labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    x = (rng.standard_normal((n, d)) * 0.1 + 2.0 * y[:, None] - 1.0).astype(np.float32)
    return Dataset(kind="samples", arrays={"x": x, "y": y})


# -- datasets and metrics ------------------------------------------------------------------------
def test_ring_means_lie_on_the_circle() -> None:
    means = ring_means(8, radius=2.0)
    assert means.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(means, axis=1), 2.0)
    np.testing.assert_allclose(means[0], [2.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(means[2], [0.0, 2.0], atol=1e-12)


def test_sample_ring_is_seeded_and_near_the_modes() -> None:
    a = sample_ring(1000, 8, 1.0, 0.01, np.random.default_rng(0))
    b = sample_ring(1000, 8, 1.0, 0.01, np.random.default_rng(0))
    assert a.shape == (1000, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    nearest = np.linalg.norm(a[:, None] - ring_means()[None], axis=2).min(axis=1)
    assert nearest.max() < 0.06


def test_mode_coverage_of_real_data_and_of_a_collapsed_generator() -> None:
    real = sample_ring(5000, rng=np.random.default_rng(1))
    result = mode_coverage(real, ring_means(), std=0.01)
    assert result["modes"] == 8
    # Within 3 std in 2-D: 1 - exp(-9/2) = 98.9% of a Gaussian's mass.
    assert 0.98 < result["high_quality"] < 0.995
    assert sum(result["per_mode"]) == round(result["high_quality"] * 5000)

    collapsed = np.tile([[0.0, 1.0]], (100, 1)) + np.array([[0.0, 0.0]] * 90 + [[0.5, 0.5]] * 10)
    result = mode_coverage(collapsed, ring_means(), std=0.01)
    assert result["modes"] == 1
    assert result["per_mode"][2] == 90
    assert result["high_quality"] == pytest.approx(0.9)


def test_mmd_tells_matching_samples_from_shifted_ones() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((300, 2)), rng.standard_normal((300, 2))
    same, shifted = mmd_rbf(x, y), mmd_rbf(x + 1.0, y)
    assert 0.0 <= same < 0.02 < shifted
    assert mmd_rbf(y, y) == pytest.approx(0.0, abs=1e-12)


# -- config --------------------------------------------------------------------------------------
def test_config_defaults_and_datasets() -> None:
    config = GANConfig()
    assert config.dataset == RingDataset(kind="ring", n_modes=8, radius=1.0, std=0.01)
    assert config.loss == "non_saturating"
    GANConfig.model_validate({"dataset": {"kind": "ring", "n_modes": 25}})
    uploaded = GANConfig.model_validate({"dataset": {"kind": "uploaded", "id": "abc"}})
    assert uploaded.dataset == UploadedDataset(id="abc")
    bad_configs: list[dict[str, object]] = [
        {"dataset": {"kind": "mnist"}},  # digits is a kind now (dcgan, cgan)
        {"dataset": {"kind": "uploaded"}},
        {"dataset": {"kind": "uploaded", "id": ""}},
        {"dataset": {"n_modes": 1}},
        {"dataset": {"std": 0.0}},
        {"loss": "wasserstein"},
        {"generator_hidden": []},
        {"generator_hidden": [64] * 9},
        {"discriminator_hidden": [0]},
        {"eval_samples": 10_001},
    ]
    for bad in bad_configs:
        with pytest.raises(ValidationError):
            GANConfig.model_validate(bad)
    assert ALGORITHM.name == "gan" and ALGORITHM.queue == "gpu" and ALGORITHM.family == "gan"
    assert ALGORITHM.model is GANModel and ALGORITHM.dataset_kinds == ("samples",)


# -- learning ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_non_saturating_gan_captures_the_modes_of_the_ring() -> None:
    """Vanilla GAN on 8 Gaussians of std 0.01, half the default budget: at least 7 modes,
    80% of samples within 3 std (measured: 8 modes, 88.5%)."""
    config = GANConfig(total_steps=3000, eval_interval=1000)
    assert config.dataset.std == 0.01 and config.dataset.radius == 1.0  # type: ignore[union-attr]
    hooks = RecordingHooks()
    model = train(config, seed=0, hooks=hooks)

    result = mode_coverage(model.generate(2500, seed=0), ring_means(8, 1.0), std=0.01)
    assert result["modes"] >= 7, result
    assert result["high_quality"] >= 0.8, result

    summary = model.metadata["summary"]
    assert summary["modes"] >= 7 and summary["high_quality"] >= 0.8
    assert hooks.last("eval/modes") == summary["modes"]
    assert {"losses/discriminator", "losses/generator", "eval/high_quality"} <= set(hooks.metrics)
    assert {"gan/d_real", "gan/d_fake"} <= set(hooks.metrics)
    assert hooks.progress[-1] == (3000, 3000)
    assert not hooks.warnings


@pytest.mark.slow
def test_minimax_generator_loss_also_trains() -> None:
    config = GANConfig(loss="minimax", total_steps=1000, eval_interval=1000)
    model = train(config, seed=0, hooks=NullHooks())
    result = mode_coverage(model.generate(2500, seed=0), ring_means(), std=0.01)
    assert result["modes"] >= 6, result
    assert result["high_quality"] >= 0.5, result


# -- uploaded samples ----------------------------------------------------------------------------
def test_trains_on_uploaded_samples_and_rebuilds_without_them() -> None:
    data = blobs()
    config = GANConfig(**{**TINY, "dataset": {"kind": "uploaded", "id": "blobs"}})
    hooks = RecordingHooks()
    model = train(config, seed=0, hooks=hooks, datasets={"blobs": data})
    assert model.data_dim == 3 and model.metadata["shapes"] == {"latent_dim": 2, "data_dim": 3}
    assert "eval/mmd" in hooks.metrics and "eval/modes" not in hooks.metrics
    assert model.metadata["summary"]["mmd"] >= 0.0
    assert model.generate(5, seed=0).shape == (5, 3)
    loaded = GANModel.from_state(model.metadata, model.state())  # no dataset needed
    np.testing.assert_array_equal(loaded.generate(5, seed=1), model.generate(5, seed=1))


def test_uploaded_samples_must_be_provided_and_of_the_right_kind() -> None:
    config = GANConfig(**{**TINY, "dataset": {"kind": "uploaded", "id": "blobs"}})
    with pytest.raises(ConfigError, match="not provided"):
        train(config, seed=0, hooks=NullHooks())
    mdp = Dataset(kind="mdp", arrays={"x": np.zeros((3, 2))})
    with pytest.raises(ConfigError, match="samples"):
        train(config, seed=0, hooks=NullHooks(), datasets={"blobs": mdp})
    flat = Dataset(kind="samples", arrays={"x": np.zeros(4, np.float32)})
    with pytest.raises(ConfigError, match=r"\[N, d\]"):
        train(config, seed=0, hooks=NullHooks(), datasets={"blobs": flat})


# -- the model -----------------------------------------------------------------------------------
def test_model_keeps_both_networks(tiny_model: GANModel) -> None:
    summary = tiny_model.metadata["summary"]
    last_is_best = summary["best_step"] == summary["steps"]
    extra = set() if last_is_best else {"last_generator"}
    assert set(tiny_model.state()) == {"generator", "discriminator", *extra}
    assert tiny_model.latent_dim == 2 and tiny_model.data_dim == 2
    assert tiny_model.discriminator is not None
    assert not tiny_model.generator.training and not tiny_model.discriminator.training


def test_a_model_file_saved_without_its_discriminator_still_generates(
    tiny_model: GANModel,
) -> None:
    """Files written before models kept their discriminator load, and say why they cannot
    score points."""
    payload = tiny_model.payload()
    del payload["state"]["discriminator"]
    old = from_payload(payload)
    assert isinstance(old, GANModel)
    assert np.array_equal(old.generate(5, seed=1), tiny_model.generate(5, seed=1))
    with pytest.raises(QueryError, match="without its discriminator"):
        old.discriminate(np.zeros((1, 2), np.float32))


def test_generate_is_seeded(tiny_model: GANModel) -> None:
    a = tiny_model.generate(100, seed=3)
    assert a.shape == (100, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, tiny_model.generate(100, seed=3))
    assert not np.array_equal(a, tiny_model.generate(100, seed=4))
    assert not np.array_equal(tiny_model.generate(100, None), tiny_model.generate(100, None))
    assert tiny_model.generate(1, seed=2**63 - 1).shape == (1, 2)
    assert tiny_model.generate(10_000, seed=0).shape == (10_000, 2)


def test_discriminate_gives_probabilities(tiny_model: GANModel) -> None:
    points = np.array([[1.0, 0.0], [0.0, 0.0], [1e30, -1e30]], dtype=np.float32)
    scores = tiny_model.discriminate(points)
    assert scores.shape == (3,) and np.all((scores >= 0.0) & (scores <= 1.0))
    np.testing.assert_array_equal(scores, tiny_model.discriminate(points))
    assert tiny_model.discriminate(np.zeros((0, 2), np.float32)).shape == (0,)


def test_the_r1_penalty_is_the_squared_slope_of_d_at_the_data() -> None:
    """For a linear D(x) = w . x + b the slope is w everywhere: E|grad D|^2 = |w|^2, and the
    discriminator's loss carries gamma / 2 of it (Mescheder et al. 2018, Eq. 9)."""
    d = torch.nn.Linear(2, 1)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([[3.0, 4.0]]))
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    penalty, logits = r1_penalty(d, real)
    assert penalty.item() == pytest.approx(25.0) and logits.shape == (16, 1)
    noise = torch.Generator().manual_seed(0)
    plain = discriminator_step(d, real, fake, GANConfig(r1_weight=0.0), noise)
    penalised = discriminator_step(d, real, fake, GANConfig(r1_weight=0.5), noise)
    assert "gan/r1_penalty" not in plain.metrics
    assert penalised.metrics["gan/r1_penalty"].item() == pytest.approx(25.0)
    assert (penalised.loss - plain.loss).item() == pytest.approx(0.25 * 25.0, rel=1e-5)
    penalised.loss.backward()  # differentiable in D's weights: d/dw (gamma / 2 |w|^2) = gamma w
    assert d.weight.grad is not None and torch.isfinite(d.weight.grad).all()
