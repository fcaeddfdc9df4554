"""Evaluation metrics shared by the algorithms.

`mode_coverage` is the mode-collapse measure of Metz et al. 2017 ("Unrolled Generative
Adversarial Networks") and Lin et al. 2018 ("PacGAN"): a generated sample is *high quality*
when it lies within `threshold_std` standard deviations of the nearest mode centre, and a mode
is *captured* when it is the nearest centre of at least one high-quality sample. PacGAN counts
a mode only above a minimum number of samples; the per-mode counts are returned so a caller
can apply such a floor, while `modes` uses the floor of one. `reverse_kl` is PacGAN's
KL(Q || P) between the distribution Q of the high-quality samples over the modes and the
true, uniform one P: 0 when every mode gets its share, log k when all samples sit on one
mode (and, by convention here, when no sample is high quality).

`mmd_rbf` measures data without known modes (an uploaded dataset): the maximum mean
discrepancy of Gretton et al. 2012 ("A Kernel Two-Sample Test", JMLR), the distance between
the mean embeddings of the two samples under a Gaussian kernel; 0 when they match.
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
    "reverse_kl": float in [0, log k], "per_mode": list of k ints (high-quality samples
    nearest to each mode)}.
    """
    samples = np.asarray(samples, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    if samples.ndim != 2 or means.ndim != 2 or samples.shape[1] != means.shape[1]:
        raise ValueError(
            f"samples (n, d) and means (k, d) must agree in d; got {samples.shape}, {means.shape}"
        )
    if len(samples) == 0:
        worst = float(np.log(len(means)))
        return {"modes": 0, "high_quality": 0.0, "reverse_kl": worst, "per_mode": [0] * len(means)}
    # dist[i, j] = |samples[i] - means[j]|
    dist = np.linalg.norm(samples[:, None, :] - means[None, :, :], axis=2)
    nearest = dist.argmin(axis=1)
    good = dist[np.arange(len(samples)), nearest] <= threshold_std * std
    per_mode = np.bincount(nearest[good], minlength=len(means))
    return {
        "modes": int((per_mode > 0).sum()),
        "high_quality": float(good.mean()),
        "reverse_kl": reverse_kl(per_mode),
        "per_mode": [int(c) for c in per_mode],
    }


def reverse_kl(per_mode: np.ndarray) -> float:
    """KL(Q || uniform) = sum_j q_j log(k q_j) for counts per_mode[k] (0 log 0 = 0); log k
    when there are no counts."""
    k = len(per_mode)
    total = per_mode.sum()
    if total == 0:
        return float(np.log(k))
    q = per_mode[per_mode > 0] / total
    return float(max((q * np.log(k * q)).sum(), 0.0))


def mmd_rbf(x: np.ndarray, y: np.ndarray, bandwidth: float | None = None) -> float:
    """Squared MMD between samples x [n, d] and y [m, d] with the Gaussian kernel
    k(a, b) = exp(-|a - b|^2 / (2 bandwidth^2)): the biased (V-statistic) estimate of
    Gretton et al. 2012, which is never negative. By default 2 bandwidth^2 is the median
    squared distance between points of `y` (the paper's "median heuristic")."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)

    def sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # d2[i, j] = |a_i - b_j|^2
        d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        return np.maximum(d2, 0.0)

    d_yy = sq_dist(y, y)
    if bandwidth is None:
        off_diagonal = d_yy[~np.eye(len(y), dtype=bool)]
        median = float(np.median(off_diagonal)) if off_diagonal.size else 0.0
        bandwidth = float(np.sqrt(median / 2.0)) if median > 0 else 1.0  # 2 s^2 = median
    gamma = 1.0 / (2.0 * bandwidth**2)
    k_xx = np.exp(-gamma * sq_dist(x, x)).mean()
    k_yy = np.exp(-gamma * d_yy).mean()
    k_xy = np.exp(-gamma * sq_dist(x, y)).mean()
    return float(max(k_xx + k_yy - 2.0 * k_xy, 0.0))


def mean_pairwise_distance(x: np.ndarray) -> float:
    """The mean Euclidean distance between two different rows of x [n, d]."""
    n = len(x)
    if n < 2:
        return 0.0
    squared = (x * x).sum(axis=1)
    d2 = squared[:, None] + squared[None, :] - 2.0 * (x @ x.T)  # d2[i, j] = |x_i - x_j|^2
    distances = np.sqrt(np.maximum(d2, 0.0))
    return float(distances.sum() / (n * (n - 1)))


def diversity(samples: np.ndarray, real: np.ndarray) -> float:
    """How spread the samples are, relative to the data: their mean pairwise distance over
    that of as many real points (rows, flattened). About 1 for a generator that matches the
    data; near 0 for one that has collapsed onto a point (the diversity check of the
    mode-collapse literature, in the space of the data itself)."""
    fake = samples.reshape(len(samples), -1).astype(np.float64)
    spread = mean_pairwise_distance(real.reshape(len(real), -1).astype(np.float64))
    return mean_pairwise_distance(fake) / max(spread, 1e-12)
