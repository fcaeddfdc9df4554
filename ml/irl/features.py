"""State features: what a learned reward may depend on.

- `onehot`: one feature per state, so the reward is a free table (kept implicit: an
  identity matrix of 10^6 states would not fit);
- `coordinates`: each of the world's coordinates scaled to [0, 1], their squares and their
  pairwise products (a smooth reward over a grid);
- `terrain`: free / goal / hazard indicators read from a grid's map;
- `world`: the world's own features (objectworld's colour distances, binaryworld's
  neighbourhoods, an uploaded mdp's `features`).

A linear reward is r = F theta and its gradient pulls back as F^T g; a network reads F's
rows, standardised (`scale`) so distances of 40 cells and indicators train alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ml.core.errors import ConfigError
from ml.tabular.mdp import TabularMDP

FeatureKind = Literal["onehot", "coordinates", "terrain", "world"]
# A dense one-hot matrix is built (for a network's input) up to this many states.
MAX_DENSE_ONEHOT = 4096


@dataclass(frozen=True)
class Features:
    """F[s, k], or the identity when `matrix` is None (one-hot)."""

    n_states: int
    matrix: np.ndarray | None  # F[s, k]

    @property
    def dim(self) -> int:
        return self.n_states if self.matrix is None else int(self.matrix.shape[1])

    def reward(self, theta: np.ndarray) -> np.ndarray:
        """r[s] = F[s] . theta (theta[k], or theta[k, a] for r[s, a])."""
        return theta.copy() if self.matrix is None else self.matrix @ theta

    def pull_back(self, per_state: np.ndarray) -> np.ndarray:
        """F^T g: a gradient over states (g[s] or g[s, a]) as one over the weights."""
        return per_state.copy() if self.matrix is None else self.matrix.T @ per_state

    def dense(self) -> np.ndarray:
        """F[s, k] as an array (a network's input)."""
        if self.matrix is not None:
            return self.matrix
        if self.n_states > MAX_DENSE_ONEHOT:
            raise ConfigError(
                f"one-hot features of {self.n_states} states are too wide for a network (at "
                f"most {MAX_DENSE_ONEHOT}); use coordinates or the world's features",
                field="features",
            )
        return np.eye(self.n_states)


def state_features(mdp: TabularMDP, kind: FeatureKind) -> Features:
    """The features of `kind` on the world, or a ConfigError when the world has none such."""
    n = mdp.n_states
    if kind == "onehot":
        return Features(n, None)
    if kind == "coordinates":
        return Features(n, coordinates(mdp.shape))
    if kind == "terrain":
        if mdp.layout is None:
            raise ConfigError(
                "terrain features are read from a grid's map, and this world has none; use "
                "onehot, coordinates or world",
                field="features",
            )
        cells = np.array([list(row) for row in mdp.layout]).reshape(-1)
        free, goal, hazard = np.isin(cells, ["S", "."]), cells == "G", cells == "H"
        return Features(n, np.stack([free, goal, hazard], 1).astype(np.float64))  # F[s, 3]
    if mdp.features is None:
        raise ConfigError(
            "this world has no features of its own (objectworld, binaryworld and uploaded "
            "mdp datasets with a `features` array do); use onehot or coordinates",
            field="features",
        )
    return Features(n, np.asarray(mdp.features, dtype=np.float64))


def coordinates(shape: tuple[int, ...]) -> np.ndarray:
    """F[s, k]: every coordinate of s in `shape` scaled to [0, 1], their squares, and their
    pairwise products (the 5 features r, c, r^2, c^2, rc on a grid)."""
    axes = np.indices(shape).reshape(len(shape), -1).T.astype(np.float64)  # x[s, d]
    axes /= np.maximum(np.asarray(shape, dtype=np.float64) - 1, 1)
    pairs = [axes[:, i] * axes[:, j] for i in range(len(shape)) for j in range(i + 1, len(shape))]
    return np.column_stack([axes, axes**2, *pairs]) if pairs else np.column_stack([axes, axes**2])


def standardise(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean[k], std[k]) of the columns, std 1 where a column is constant."""
    mean, std = F.mean(axis=0), F.std(axis=0)
    return mean, np.where(std > 1e-12, std, 1.0)
