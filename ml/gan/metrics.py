"""Evaluation metrics shared by the algorithms.

`mode_coverage` is the mode-collapse measure of Metz et al. 2017 ("Unrolled Generative
Adversarial Networks") and Lin et al. 2018 ("PacGAN"): a generated sample is *high quality*
when it lies within `threshold_std` standard deviations of the nearest mode centre, and a mode
is *captured* when it is the nearest centre of at least one high-quality sample. PacGAN counts
a mode only above a minimum number of samples; the per-mode counts are returned so a caller
can apply such a floor, while `modes` uses the floor of one.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def mode_coverage(
    samples: np.ndarray, means: np.ndarray, std: float, threshold_std: float = 3.0
) -> dict[str, Any]:
    """How many modes the samples reach, and what fraction of them are near any mode.

    samples: (n, d) points; means: (k, d) mode centres; std: the modes' standard deviation.
    Distances are Euclidean. Returns {"modes": int, "high_quality": float in [0, 1],
    "per_mode": list of k ints (high-quality samples nearest to each mode)}.
    """
    samples = np.asarray(samples, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    if samples.ndim != 2 or means.ndim != 2 or samples.shape[1] != means.shape[1]:
        raise ValueError(
            f"samples (n, d) and means (k, d) must agree in d; got {samples.shape}, {means.shape}"
        )
    if len(samples) == 0:
        return {"modes": 0, "high_quality": 0.0, "per_mode": [0] * len(means)}
    # dist[i, j] = |samples[i] - means[j]|
    dist = np.linalg.norm(samples[:, None, :] - means[None, :, :], axis=2)
    nearest = dist.argmin(axis=1)
    good = dist[np.arange(len(samples)), nearest] <= threshold_std * std
    per_mode = np.bincount(nearest[good], minlength=len(means))
    return {
        "modes": int((per_mode > 0).sum()),
        "high_quality": float(good.mean()),
        "per_mode": [int(c) for c in per_mode],
    }
