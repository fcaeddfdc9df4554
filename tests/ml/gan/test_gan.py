"""The GAN on the ring of Gaussians: datasets, the mode-coverage metric, learning, the model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from ml.core.errors import QueryError, TrainingStopped, UnsupportedQuery
from ml.core.hooks import NullHooks, RecordingHooks
from ml.core.model import load
from ml.gan.datasets import RingDataset, ring_means, sample_ring
from ml.gan.gan import ALGORITHM, MAX_SAMPLES, GANConfig, GANModel, train
from ml.gan.metrics import mode_coverage

# A few steps of a small network: enough to exercise the plumbing, not to learn.
TINY = {
    "generator_hidden": [16, 16],
    "discriminator_hidden": [16],
    "batch_size": 32,
    "total_steps": 60,
    "checkpoint_interval": 20,
    "eval_interval": 30,
    "eval_samples": 200,
}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Small networks run faster on one thread than on two shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_model() -> GANModel:
    return train(GANConfig(**TINY), seed=0, hooks=NullHooks())


# -- datasets and metric -------------------------------------------------------------------------
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


# -- config --------------------------------------------------------------------------------------
def test_config_defaults_and_bounds() -> None:
    config = GANConfig()
    assert config.dataset == RingDataset(kind="ring", n_modes=8, radius=1.0, std=0.01)
    assert config.loss == "non_saturating"
    GANConfig.model_validate({"dataset": {"kind": "ring", "n_modes": 25}})
    bad_configs: list[dict[str, object]] = [
        {"unknown": 1},
        {"dataset": {"kind": "digits"}},
        {"dataset": {"n_modes": 1}},
        {"dataset": {"n_modes": 65}},
        {"dataset": {"std": 0.0}},
        {"loss": "wasserstein"},
        {"generator_hidden": []},
        {"generator_hidden": [64] * 9},
        {"discriminator_hidden": [0]},
        {"total_steps": 0},
        {"total_steps": 1_000_001},
        {"eval_samples": MAX_SAMPLES + 1},
    ]
    for bad in bad_configs:
        with pytest.raises(ValidationError):
            GANConfig.model_validate(bad)
    assert ALGORITHM.name == "gan" and ALGORITHM.queue == "gpu" and ALGORITHM.family == "gan"
    assert ALGORITHM.model is GANModel and ALGORITHM.queries == ("samples",)


# -- learning ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_non_saturating_gan_captures_the_modes_of_the_ring() -> None:
    """Vanilla GAN on 8 Gaussians of std 0.01: at least 7 modes, 80% of samples within 3 std."""
    config = GANConfig(total_steps=2000, eval_interval=1000)
    assert config.dataset.std == 0.01 and config.dataset.radius == 1.0
    hooks = RecordingHooks()
    model = train(config, seed=0, hooks=hooks)

    result = mode_coverage(model.samples(2500, seed=0), ring_means(8, 1.0), std=0.01)
    assert result["modes"] >= 7, result
    assert result["high_quality"] >= 0.8, result

    summary = model.metadata["summary"]
    assert summary["modes"] >= 7 and summary["high_quality"] >= 0.8
    assert hooks.last("eval/modes") == summary["modes"]
    assert {"losses/discriminator", "losses/generator", "eval/high_quality"} <= set(hooks.metrics)
    assert hooks.progress[-1] == (2000, 2000)


@pytest.mark.slow
def test_minimax_generator_loss_also_trains() -> None:
    config = GANConfig(loss="minimax", total_steps=1000, eval_interval=1000)
    model = train(config, seed=0, hooks=NullHooks())
    result = mode_coverage(model.samples(2500, seed=0), ring_means(), std=0.01)
    assert result["modes"] >= 6, result
    assert result["high_quality"] >= 0.5, result


# -- the model -----------------------------------------------------------------------------------
def test_metadata_is_json_and_describes_the_model(tiny_model: GANModel) -> None:
    metadata = tiny_model.metadata
    json.dumps(metadata)
    assert metadata["kind"] == "gan" and metadata["algorithm"] == "gan"
    assert metadata["shapes"] == {"latent_dim": 2, "data_dim": 2}
    assert metadata["seed"] == 0
    assert GANConfig.model_validate(metadata["config"]) == GANConfig(**TINY)
    assert {"modes", "high_quality"} <= set(metadata["summary"])


def test_samples_are_seeded(tiny_model: GANModel) -> None:
    a = tiny_model.samples(100, seed=3)
    assert a.shape == (100, 2)
    np.testing.assert_array_equal(a, tiny_model.samples(100, seed=3))
    assert not np.array_equal(a, tiny_model.samples(100, seed=4))
    assert not np.array_equal(tiny_model.samples(100), tiny_model.samples(100))
    assert tiny_model.samples(MAX_SAMPLES, seed=0).shape == (MAX_SAMPLES, 2)


def test_save_and_load_round_trip(tiny_model: GANModel, tmp_path: Path) -> None:
    tiny_model.save(tmp_path / "m.pt")
    loaded = load(tmp_path / "m.pt")
    assert isinstance(loaded, GANModel)
    assert loaded.metadata == tiny_model.metadata
    np.testing.assert_array_equal(loaded.samples(50, seed=7), tiny_model.samples(50, seed=7))


def test_same_seed_same_model() -> None:
    a = train(GANConfig(**TINY), seed=5, hooks=NullHooks())
    b = train(GANConfig(**TINY), seed=5, hooks=NullHooks())
    c = train(GANConfig(**TINY), seed=6, hooks=NullHooks())
    np.testing.assert_array_equal(a.samples(50, seed=0), b.samples(50, seed=0))
    assert not np.array_equal(a.samples(50, seed=0), c.samples(50, seed=0))


def test_resume_from_a_checkpoint_continues_where_it_stopped(tmp_path: Path) -> None:
    config = GANConfig(**TINY)
    hooks = RecordingHooks(stop_after_checkpoints=1)
    with pytest.raises(TrainingStopped) as stopped:
        train(config, seed=1, hooks=hooks)
    assert stopped.value.step == 20
    # The checkpoint survives the trip through a weights-only file, as the worker stores it.
    torch.save(hooks.checkpoints[-1], tmp_path / "ckpt.pt")
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert state["step"] == 20

    resumed_hooks = RecordingHooks()
    resumed = train(config, seed=1, hooks=resumed_hooks, resume=state)
    assert resumed_hooks.progress[0] == (20, 60)
    assert resumed.metadata["summary"]["steps"] == 60
    # Every random number generator was restored: the same model as an uninterrupted run.
    straight = train(config, seed=1, hooks=NullHooks())
    np.testing.assert_array_equal(resumed.samples(50, seed=0), straight.samples(50, seed=0))


@pytest.mark.parametrize(
    ("n", "seed", "field"),
    [
        (0, None, "n"),
        (MAX_SAMPLES + 1, None, "n"),
        (-3, None, "n"),
        (2.5, None, "n"),
        ("10", None, "n"),
        (True, None, "n"),
        (None, None, "n"),
        (10, -1, "seed"),
        (10, 2**63, "seed"),
        (10, "1", "seed"),
        (10, 1.0, "seed"),
        (10, True, "seed"),
    ],
)
def test_bad_sample_queries_raise_query_error(
    tiny_model: GANModel, n: object, seed: object, field: str
) -> None:
    with pytest.raises(QueryError) as error:
        tiny_model.samples(n, seed=seed)  # type: ignore[arg-type]
    assert error.value.field == field


def test_other_queries_are_unsupported(tiny_model: GANModel) -> None:
    with pytest.raises(UnsupportedQuery):
        tiny_model.q_values(observations=[[0.0, 0.0]])
