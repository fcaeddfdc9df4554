"""The GAN variants on PacGAN's grid of 25 Gaussians with their default settings, judged as
the mode-collapse literature judges them: modes captured always paired with the share of
high-quality samples, since uniform noise over the square already "captures" 16-20 modes
at about 1.5% high quality (`bench.gan_mixtures`, which has the spread over seeds and the
published rows)."""

from __future__ import annotations

from typing import Any

import pytest

import ml
from ml.core.hooks import RecordingHooks
from ml.gan.datasets import GridDataset
from ml.gan.metrics import mode_coverage

GRID = GridDataset()


def on_the_grid(name: str) -> tuple[dict[str, Any], RecordingHooks]:
    """The variant with its defaults on grid25, seed 0: its mode coverage on 2,500 samples."""
    algorithm = ml.ALGORITHMS[name]
    config = algorithm.config.model_validate({"dataset": GRID.model_dump()})
    hooks = RecordingHooks()
    model: Any = algorithm.run(config, seed=0, hooks=hooks)
    return mode_coverage(model.generate(2500, seed=0), GRID.means(), GRID.std), hooks


@pytest.mark.slow
def test_gan_is_the_one_for_the_grid() -> None:
    """`gan`, recommended for the mixtures: at least 20 of 25 modes with at least 70% of the
    samples within 3 std (measured: 25 modes, 75.2%; seeds 1 and 2: 76.1% and 78.1%; about
    40 s on one core)."""
    result, hooks = on_the_grid("gan")
    assert result["modes"] >= 20 and result["high_quality"] >= 0.7, result
    assert not hooks.warnings


@pytest.mark.slow
def test_wgan_gp_covers_the_grid_with_some_quality() -> None:
    """`wgan_gp` covers the grid but leaves most samples between the modes: at least 20
    modes with at least 10% high-quality (measured: 24 modes, 12.4%; seeds 1 and 2: 21 and
    24 modes, 10.8% and 11.3%; about a minute on one core), a positive Wasserstein estimate."""
    result, hooks = on_the_grid("wgan_gp")
    assert result["modes"] >= 20 and result["high_quality"] >= 0.1, result
    assert hooks.last("gan/wasserstein") > 0.0
