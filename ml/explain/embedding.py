"""Points of many dimensions drawn in two: PCA and t-SNE, by scikit-learn.

PCA (Pearson 1901) is linear and exact: the answer says how much of the variance the two
axes keep. t-SNE (van der Maaten & Hinton 2008) keeps neighbourhoods rather than distances,
so clusters show even when no plane separates them; it needs more points than about three
times its perplexity (each point's effective number of neighbours), and the same seed gives
the same picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ml.core.errors import QueryError

Method = Literal["pca", "tsne"]
MIN_POINTS = 3


@dataclass(frozen=True)
class Embedded:
    coordinates: np.ndarray  # [n, 2]
    explained_variance_ratio: list[float] | None  # PCA: of each axis
    axis_labels: tuple[str, str]


def embed(
    points: np.ndarray, method: Method, *, perplexity: float = 30.0, seed: int = 0
) -> Embedded:
    """Points x[n, d] in two dimensions. QueryError naming `perplexity` (t-SNE) or the
    points when there are too few for the method."""
    from sklearn.decomposition import PCA  # here: a second of imports no other query needs
    from sklearn.manifold import TSNE

    x = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    if len(x) < MIN_POINTS:
        raise QueryError(f"an embedding needs at least {MIN_POINTS} points; got {len(x)}")
    if method == "pca":
        dims = min(2, x.shape[1], len(x))
        pca = PCA(n_components=dims, random_state=seed)
        coordinates = pca.fit_transform(x)
        if dims < 2:  # one feature: the second axis is empty
            coordinates = np.hstack([coordinates, np.zeros((len(x), 2 - dims))])
        ratio = [float(r) for r in pca.explained_variance_ratio_]
        first = f"PC1 ({ratio[0]:.0%} of variance)"
        second = f"PC2 ({ratio[1]:.0%} of variance)" if dims == 2 else "PC2 (none)"
        return Embedded(coordinates, ratio, (first, second))
    needed = int(3 * perplexity) + 1
    if len(x) < needed:
        raise QueryError(
            f"t-SNE with perplexity {perplexity:g} needs at least {needed} points (3 x "
            f"perplexity + 1); got {len(x)}: send more, lower the perplexity, or use pca",
            field="perplexity",
        )
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return Embedded(tsne.fit_transform(x), None, ("t-SNE 1", "t-SNE 2"))
