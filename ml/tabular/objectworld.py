"""Objectworld and binaryworld: the benchmark worlds of nonlinear inverse RL.

A text grid's reward is a table an inverse-RL method can fit cell by cell; these two worlds
instead hide a *nonlinear* reward behind state features, which is what GPIRL (Levine, Popović
& Koltun 2011, "Nonlinear Inverse Reinforcement Learning with Gaussian Processes", NIPS) and
deep MaxEnt IRL (Wulfmeier, Ondruska & Posner 2015, "Maximum Entropy Deep Inverse
Reinforcement Learning", arXiv:1507.04888) were measured on. The MDP carries the features
(`TabularMDP.features`, F[s, k]) and the true reward (`state_reward`) it should recover.

Both are N x N grids, cells numbered `row * N + col`, with five actions: gridworld's left,
down, right, up (`ml.tabular.gridworld.ACTION_NAMES`) and stay. With probability
1 - `random_move` the chosen action's move happens, otherwise the move of one of the five
actions chosen uniformly (the chosen one included), so the intended move has probability
1 - random_move + random_move / 5; a move off the grid stays in place. The reward r(s) is
received in the state whatever the action: R[s, a] = r(s). Nothing is terminal and every
cell may start.

Objectworld (Levine et al. 2011): `n_objects` objects on distinct cells, each with an inner and
an outer colour out of C. Its continuous features are the Euclidean distances from the cell
to the nearest object of each inner colour and of each outer colour (2C features: inner
colours 0..C-1, then outer colours 0..C-1; a colour no object has is at `absent_distance`,
N * sqrt(2), farther than any two cells are apart). Its discrete ("binary") features are, for
each of those 2C distances and each d in 1..N, the indicator "distance <= d" (2 C N features,
k = j * N + d - 1 for distance j). The true reward is +1 within distance 3 of an object of
outer colour 0 and within distance 2 of one of outer colour 1, -1 within distance 3 of outer
colour 0 only, and 0 elsewhere (Euclidean distances between cell centres, bounds included).
The papers fix the object count per experiment; the default here, max(2 C, round(N^2 / 20))
objects (51 on 32 x 32), is this module's own: dense enough that the default world has both
+1 and -1 regions, sparse enough that most cells are 0.

Binaryworld (Wulfmeier et al. 2015): each cell is blue (1) with probability
`blue_probability`, else red (0). Its features are the colours of the cell's 3 x 3
neighbourhood, row-major with the cell in the middle (index 4); cells beyond the edge count
as red, our choice (the paper does not say). The true reward is +1 where exactly 4 of the 9
are blue, -1 where exactly 5 are, and 0 otherwise.

The discount is the solver's, not the world's; both papers use 0.9. A world's `seed` fixes
its objects or colours: the same config is the same world. Everything is vectorized: a
256 x 256 world builds in a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import sparse
from scipy.spatial import cKDTree

from ml.tabular.gridworld import ACTION_NAMES, MOVES
from ml.tabular.mdp import TabularMDP, from_triplets

ACTION_NAMES_5 = (*ACTION_NAMES, "stay")
# (d_row, d_col) of each action, in ACTION_NAMES_5 order.
MOVES_5 = np.vstack([MOVES, [[0, 0]]])

# The discrete features are dense float64 F[s, k] of N^2 * 2 C N entries: at most this many
# (256 MB), which allows any colour count up to 128 x 128.
MAX_FEATURE_ENTRIES = 1 << 25

# The true reward's radii (Levine et al. 2011): near outer colour 0, and near outer colour 1.
NEAR_OUTER_0, NEAR_OUTER_1 = 3.0, 2.0


class ObjectWorldEnv(BaseModel):
    """Levine et al.'s objectworld: coloured objects on an N x N grid, features that are
    distances to them, and a reward that is a nonlinear function of those distances."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["objectworld"] = "objectworld"
    size: int = Field(32, ge=4, le=256, description="N: the world is an N x N grid.")
    n_colours: int = Field(2, ge=2, le=8, description="C: colours of objects.")
    n_objects: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Objects, on distinct cells (at most N^2); null: max(2 C, round(N^2 / 20)), "
        "51 on 32 x 32.",
    )
    features: Literal["continuous", "discrete"] = Field(
        "continuous",
        description="continuous: distance to the nearest object of each inner and outer colour "
        "(2 C features); discrete: whether that distance is at most d, for d in 1..N (2 C N "
        "binary features).",
    )
    random_move: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="Probability that one of the five moves, chosen uniformly, happens instead "
        "of the chosen one.",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Where the objects are and their colours.")

    @model_validator(mode="after")
    def _check_world(self) -> ObjectWorldEnv:
        cells = self.size * self.size
        if self.object_count > cells:
            raise ValueError(
                f"{self.object_count} objects do not fit on distinct cells of a "
                f"{self.size} x {self.size} grid ({cells} cells)"
            )
        if self.features == "discrete" and cells * n_features(self) > MAX_FEATURE_ENTRIES:
            raise ValueError(
                f"discrete features of a {self.size} x {self.size} world with "
                f"{self.n_colours} colours are {cells} x {n_features(self)} values, more than "
                f"{MAX_FEATURE_ENTRIES}; use continuous features or a smaller world"
            )
        return self

    @property
    def object_count(self) -> int:
        """The number of objects: `n_objects`, or the default that scales with the grid."""
        if self.n_objects is not None:
            return self.n_objects
        return max(2 * self.n_colours, round(self.size * self.size / 20))


class BinaryWorldEnv(BaseModel):
    """Wulfmeier et al.'s binaryworld: blue and red cells; the reward depends on how many of
    a cell's 3 x 3 neighbourhood are blue."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["binaryworld"] = "binaryworld"
    size: int = Field(32, ge=4, le=256, description="N: the world is an N x N grid.")
    blue_probability: float = Field(
        0.5, gt=0.0, lt=1.0, description="Probability that a cell is blue."
    )
    random_move: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="Probability that one of the five moves, chosen uniformly, happens instead "
        "of the chosen one.",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="The colours of the cells.")


@dataclass(frozen=True)
class Objects:
    """Objectworld's objects, one entry each."""

    cells: np.ndarray  # cells[i]: state (row * N + col) of object i, distinct
    inner: np.ndarray  # inner[i]: inner colour, 0..C-1
    outer: np.ndarray  # outer[i]: outer colour, 0..C-1


def n_features(env: ObjectWorldEnv | BinaryWorldEnv) -> int:
    """Columns of the world's F[s, k], without building it."""
    if isinstance(env, BinaryWorldEnv):
        return 9
    distances = 2 * env.n_colours
    return distances if env.features == "continuous" else distances * env.size


def grid_dynamics(size: int, random_move: float) -> sparse.csr_array:
    """P[(s, a), s'] of the five-action N x N grid both worlds share (module docstring)."""
    n_states, n_actions = size * size, len(ACTION_NAMES_5)
    states = np.arange(n_states)
    row, col = np.divmod(states, size)
    r = row[None, :] + MOVES_5[:, :1]  # r[m, s]: the row move m leads to
    c = col[None, :] + MOVES_5[:, 1:]
    inside = (r >= 0) & (r < size) & (c >= 0) & (c < size)
    target = np.where(inside, r * size + c, states[None, :])  # target[m, s]
    # chance[a, m]: the probability that choosing a makes move m.
    chance = np.full((n_actions, n_actions), random_move / n_actions)
    chance[np.diag_indices(n_actions)] += 1.0 - random_move
    a, m, s = np.nonzero(np.broadcast_to((chance > 0)[:, :, None], (*chance.shape, n_states)))
    return from_triplets(s * n_actions + a, target[m, s], chance[a, m], n_states, n_actions)


def place_objects(env: ObjectWorldEnv) -> Objects:
    """The objects of the world `env.seed` names: distinct cells, then inner, then outer
    colours, all drawn uniformly from `np.random.default_rng(env.seed)`."""
    rng = np.random.default_rng(env.seed)
    cells = rng.choice(env.size * env.size, size=env.object_count, replace=False)
    inner = rng.integers(env.n_colours, size=env.object_count)
    outer = rng.integers(env.n_colours, size=env.object_count)
    return Objects(cells=cells, inner=inner, outer=outer)


def absent_distance(size: int) -> float:
    """The distance to a colour no object has: farther than any two cells are apart."""
    return float(size * np.sqrt(2.0))


def colour_distances(env: ObjectWorldEnv, objects: Objects) -> np.ndarray:
    """D[s, j]: Euclidean distance from cell s to the nearest object of inner colour j
    (j < C), or of outer colour j - C; `absent_distance` where no object has that colour."""
    n, n_colours = env.size, env.n_colours
    points = np.stack(np.divmod(np.arange(n * n), n), axis=1).astype(np.float64)  # [S, 2]
    D = np.full((n * n, 2 * n_colours), absent_distance(n))
    groups = [objects.inner == c for c in range(n_colours)]
    groups += [objects.outer == c for c in range(n_colours)]  # groups[j][i]: i counts for j
    for j, members in enumerate(groups):
        here = objects.cells[members]
        if len(here):
            D[:, j], _ = cKDTree(points[here]).query(points, k=1)
    return D


def discrete_features(D: np.ndarray, size: int) -> np.ndarray:
    """F[s, j * N + d - 1] = 1.0 where D[s, j] <= d, for d in 1..N."""
    thresholds = np.arange(1, size + 1, dtype=np.float64)  # [N]
    return (D[:, :, None] <= thresholds).reshape(len(D), -1).astype(np.float64)


def objectworld_reward(D: np.ndarray, n_colours: int) -> np.ndarray:
    """r[s] of Levine et al. from the distances D[s, j] of `colour_distances`."""
    near_0 = D[:, n_colours] <= NEAR_OUTER_0  # outer colour 0
    near_1 = D[:, n_colours + 1] <= NEAR_OUTER_1  # outer colour 1
    return np.where(near_0, np.where(near_1, 1.0, -1.0), 0.0)


def _world(P: sparse.csr_array, reward: np.ndarray, features: np.ndarray, size: int) -> TabularMDP:
    """The TabularMDP of a grid whose reward r[s] is received in the state."""
    n_states, n_actions = size * size, len(ACTION_NAMES_5)
    return TabularMDP(
        transitions=P,
        R=np.repeat(reward[:, None], n_actions, axis=1),  # R[s, a] = r(s)
        terminal=np.zeros(n_states, dtype=bool),
        start=np.full(n_states, 1.0 / n_states),
        shape=(size, size),
        action_names=ACTION_NAMES_5,
        wall=np.zeros(n_states, dtype=bool),
        state_reward=reward,
        features=features,
    )


def build_objectworld(env: ObjectWorldEnv) -> TabularMDP:
    """Levine et al.'s objectworld (see the module docstring)."""
    D = colour_distances(env, place_objects(env))  # D[s, j]
    features = D if env.features == "continuous" else discrete_features(D, env.size)  # F[s, k]
    reward = objectworld_reward(D, env.n_colours)  # r[s]
    return _world(grid_dynamics(env.size, env.random_move), reward, features, env.size)


def blue_cells(env: BinaryWorldEnv) -> np.ndarray:
    """blue[row, col]: the world's colours (1 blue, 0 red) from `default_rng(env.seed)`."""
    rng = np.random.default_rng(env.seed)
    return (rng.random((env.size, env.size)) < env.blue_probability).astype(np.float64)


def neighbourhoods(blue: np.ndarray) -> np.ndarray:
    """F[s, k]: the colour of the k-th cell (row-major) of s's 3 x 3 neighbourhood; cells
    beyond the edge are red (0)."""
    padded = np.pad(blue, 1)  # zeros: red
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3))  # [N, N, 3, 3]
    return windows.reshape(blue.size, 9).astype(np.float64)


def binaryworld_reward(features: np.ndarray) -> np.ndarray:
    """r[s] of Wulfmeier et al.: +1 for exactly 4 blue neighbours (of 9), -1 for exactly 5."""
    blue = features.sum(axis=1)  # blue[s]
    return np.select([blue == 4, blue == 5], [1.0, -1.0], default=0.0)


def build_binaryworld(env: BinaryWorldEnv) -> TabularMDP:
    """Wulfmeier et al.'s binaryworld (see the module docstring)."""
    features = neighbourhoods(blue_cells(env))  # F[s, k]
    reward = binaryworld_reward(features)  # r[s]
    return _world(grid_dynamics(env.size, env.random_move), reward, features, env.size)
