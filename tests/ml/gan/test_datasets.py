"""The built-in 2-D datasets (PacGAN's ring8 and grid25, the swiss roll) and the mode metrics
on them."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from ml.gan.datasets import (
    GridDataset,
    RingDataset,
    SwissRollDataset,
    grid_means,
    sample_swissroll,
)
from ml.gan.gan import GANConfig
from ml.gan.metrics import mode_coverage, reverse_kl


def test_ring8_is_pacgans() -> None:
    ring = RingDataset()
    assert (ring.n_modes, ring.radius, ring.std) == (8, 1.0, 0.01)
    np.testing.assert_allclose(np.linalg.norm(ring.means(), axis=1), 1.0)


def test_grid25_is_pacgans() -> None:
    grid = GridDataset()
    assert grid.n_modes == 25 and grid.std == 0.05 and grid.data_dim == 2
    means = grid.means()
    expected = {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert means.shape == (25, 2) and {tuple(m) for m in means.tolist()} == expected
    np.testing.assert_allclose(
        grid_means(2, 1.0), [[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]]
    )


def test_grid25_samples_have_the_right_statistics() -> None:
    grid = GridDataset()
    x = grid.sample(50_000, np.random.default_rng(0))
    assert x.shape == (50_000, 2) and x.dtype == np.float32
    np.testing.assert_array_equal(x, grid.sample(50_000, np.random.default_rng(0)))
    nearest = np.linalg.norm(x[:, None] - grid.means()[None], axis=2).argmin(axis=1)
    offsets = x - grid.means()[nearest]
    np.testing.assert_allclose(offsets.std(axis=0), 0.05, rtol=0.02)
    np.testing.assert_allclose(offsets.mean(axis=0), 0.0, atol=1e-3)
    counts = np.bincount(nearest, minlength=25)
    assert counts.min() > 0.9 * 2000 and counts.max() < 1.1 * 2000  # equal weights
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=0.05)
    np.testing.assert_allclose(x.var(axis=0), 8.0 + 0.05**2, rtol=0.03)  # var of {-4..4}: 8


def test_mode_metrics_on_grid25() -> None:
    grid = GridDataset()
    real = mode_coverage(grid.sample(2500, np.random.default_rng(1)), grid.means(), grid.std)
    assert real["modes"] == 25 and 0.98 < real["high_quality"] < 0.995
    assert real["reverse_kl"] < 0.02
    # Uniform noise over the square reaches most modes, at about 2% high quality.
    noise = np.random.default_rng(2).uniform(-5.0, 5.0, size=(2500, 2))
    uniform = mode_coverage(noise, grid.means(), grid.std)
    assert uniform["modes"] >= 12 and 0.005 < uniform["high_quality"] < 0.04
    # All samples on one mode: 1 mode, reverse KL log 25.
    one = mode_coverage(np.tile([[2.0, -4.0]], (100, 1)), grid.means(), grid.std)
    assert one["modes"] == 1 and one["high_quality"] == 1.0
    assert one["reverse_kl"] == pytest.approx(np.log(25))
    # Just beyond 3 std of a mode is not high quality.
    off = mode_coverage(np.array([[0.0, 0.16]]), grid.means(), grid.std)
    assert off["modes"] == 0 and off["reverse_kl"] == pytest.approx(np.log(25))


def test_reverse_kl() -> None:
    assert reverse_kl(np.array([5, 5, 5, 5])) == pytest.approx(0.0)
    assert reverse_kl(np.array([10, 10, 0, 0])) == pytest.approx(np.log(2))
    assert reverse_kl(np.array([0, 0, 0])) == pytest.approx(np.log(3))


def test_swissroll_shape_and_statistics() -> None:
    roll = SwissRollDataset()
    x = roll.sample(20_000, np.random.default_rng(0))
    assert x.shape == (20_000, 2) and x.dtype == np.float32 and roll.data_dim == 2
    np.testing.assert_array_equal(x, roll.sample(20_000, np.random.default_rng(0)))
    # Without noise the points lie on the spiral r = t / 7.5, t in [1.5 pi, 4.5 pi].
    clean = sample_swissroll(5000, noise=0.0, rng=np.random.default_rng(1)).astype(np.float64)
    r = np.linalg.norm(clean, axis=1)
    assert r.min() >= 1.5 * np.pi / 7.5 - 1e-5 and r.max() <= 4.5 * np.pi / 7.5 + 1e-5
    t = r * 7.5
    np.testing.assert_allclose(clean, np.stack([t * np.cos(t), t * np.sin(t)], 1) / 7.5, atol=1e-5)
    assert np.abs(x).max() < 2.5 and x.std(axis=0).min() > 0.5


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ring8", RingDataset()),
        ("grid25", GridDataset()),
        ({"kind": "grid25", "std": 0.1}, GridDataset(std=0.1)),
        ({"kind": "ring8"}, RingDataset()),
        ("swissroll", SwissRollDataset()),
    ],
)
def test_built_in_sets_answer_to_their_names(given: object, expected: object) -> None:
    assert GANConfig.model_validate({"dataset": given}).dataset == expected


def test_an_unknown_name_is_refused_with_the_names_there_are() -> None:
    with pytest.raises(ValidationError, match=r"unknown dataset 'grid26'.*grid25"):
        GANConfig.model_validate({"dataset": "grid26"})
