"""PCA's explained variance is the data's, t-SNE separates clusters that are apart, and too
few points for t-SNE are a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from ml.core.errors import QueryError
from ml.explain.embedding import embed


def test_pca_explained_variance_matches_the_singular_values() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)) * np.array([5.0, 3.0, 1.0, 0.5, 0.2, 0.1])
    found = embed(x, "pca")
    centred = x - x.mean(axis=0)
    variance = np.linalg.svd(centred, compute_uv=False) ** 2
    assert found.explained_variance_ratio is not None
    assert np.allclose(found.explained_variance_ratio, variance[:2] / variance.sum())
    assert found.coordinates.shape == (200, 2)
    assert found.axis_labels[0].startswith("PC1 (")


def test_pca_of_one_feature_has_an_empty_second_axis() -> None:
    found = embed(np.arange(10.0)[:, None], "pca")
    assert found.coordinates.shape == (10, 2) and (found.coordinates[:, 1] == 0).all()


def test_tsne_separates_two_clusters() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(60, 10))
    b = rng.normal(size=(60, 10)) + 8.0
    found = embed(np.vstack([a, b]), "tsne", perplexity=10, seed=0)
    p = found.coordinates
    labels = np.r_[np.zeros(60), np.ones(60)]
    distances = ((p[:, None, :] - p[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    assert (labels[distances.argmin(axis=1)] == labels).all()  # every neighbour is its own
    centres = np.array([p[labels == k].mean(axis=0) for k in (0, 1)])
    spread = max(p[labels == k].std(axis=0).max() for k in (0, 1))
    assert np.linalg.norm(centres[0] - centres[1]) > 3 * spread


def test_tsne_on_too_few_points_says_so() -> None:
    with pytest.raises(QueryError) as error:
        embed(np.zeros((20, 3)), "tsne", perplexity=30)
    assert error.value.field == "perplexity" and "91 points" in str(error.value)
