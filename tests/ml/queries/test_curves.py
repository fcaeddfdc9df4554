"""Training curves drawn by `ml.queries.figures`: the smoothing TensorBoard uses, and a
figure for any number of runs, gaps and no points at all."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ml.queries.figures import MAX_PANELS, curves_png, heatmap_png, smooth


def test_smoothing_is_a_debiased_moving_average() -> None:
    x = np.array([2.0, 2.0, 2.0, 2.0])
    np.testing.assert_allclose(smooth(x, 0.9), x)  # no pull towards 0 at the start
    y = np.array([0.0, 1.0, np.nan, 1.0])
    s = smooth(y, 0.5)
    assert s[0] == 0.0 and np.isnan(s[2])
    assert s[1] == pytest.approx(0.5 / 0.75)  # (0.5 * 0 + 0.5 * 1) / (1 - 0.25)
    np.testing.assert_array_equal(smooth(y, 0.0)[[0, 1, 3]], [0.0, 1.0, 1.0])


def test_curves_of_runs_are_deterministic_pngs() -> None:
    steps = list(range(0, 100, 10))
    runs = {
        "a": {"losses/g": (steps, list(np.linspace(1, 0, 10))), "eval/x": ([10], [0.5])},
        "b": {"losses/g": (steps, [float("nan"), *np.linspace(2, 1, 9)])},
    }
    png = curves_png(runs, smoothing=0.6, title="compare")
    assert png == curves_png(runs, smoothing=0.6, title="compare")
    assert png != curves_png(runs, smoothing=0.0, title="compare")  # the raw curves alone
    assert Image.open(io.BytesIO(png)).size == (920, 340)
    empty = Image.open(io.BytesIO(curves_png({}, smoothing=0.0)))
    assert empty.size == (460, 300)


def test_too_many_panels_or_a_bad_smoothing_are_refused() -> None:
    many = {"a": {f"m/{i}": ([0], [1.0]) for i in range(MAX_PANELS + 1)}}
    with pytest.raises(ValueError, match="choose some with `name`"):
        curves_png(many)
    with pytest.raises(ValueError, match="smoothing"):
        curves_png({}, smoothing=1.0)


def test_heatmaps_draw_walls_ends_and_arrows_deterministically() -> None:
    values = np.arange(6.0).reshape(2, 3)
    wall = np.array([[False, True, False], [False, False, False]])
    terminal = np.array([[False, False, True], [False, False, False]])
    policy = np.array([2, 0, 0, 3, 3, 0])
    names = ["left", "down", "right", "up"]
    png = heatmap_png(
        values, title="V", action_names=names, wall=wall, terminal=terminal, policy=policy
    )
    assert png == heatmap_png(
        values, title="V", action_names=names, wall=wall, terminal=terminal, policy=policy
    )
    assert png != heatmap_png(values, title="V")  # the walls, ends and arrows are drawn
    assert Image.open(io.BytesIO(png)).size[0] > 300
    with pytest.raises(ValueError, match="2-D grid"):
        heatmap_png(np.zeros(4), title="flat")
