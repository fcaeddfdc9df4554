"""A finite MDP as arrays: what dynamic programming (`ml.tabular.dp`) and inverse RL need.

The worlds that build one (`ml.tabular.gridworld`, `ml.tabular.toy_text`, an uploaded `mdp`
dataset; `ml.tabular.worlds` chooses by `kind`) all end here, so a solver never knows which
world it solves.

P is kept sparse, (S * A, S) with row `s * A + a` = Pr(. | s, a): a grid state has at most a
few successors, and that is what lets a 1000 x 1000 grid (10^6 states) fit in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

# Dense P[s, a, s'] is built on request only below this many states (8 * A * S^2 bytes).
DENSE_STATES = 4096


@dataclass(frozen=True)
class TabularMDP:
    """A finite MDP; states are numbered in row-major order of `shape`."""

    transitions: sparse.csr_array  # P[(s, a), s'], rows sum to 1
    R: np.ndarray  # R[s, a] expected reward of taking a in s: sum_s' P(s'|s, a) r(s, a, s')
    terminal: np.ndarray  # terminal[s]: entering it ends the episode; value 0
    start: np.ndarray  # start[s]: initial state distribution
    shape: tuple[int, ...]  # how states lay out: (rows, cols) for grids, (5, 5, 5, 4) Taxi
    action_names: tuple[str, ...]
    wall: np.ndarray  # wall[s]: a cell no agent can be in (never terminal)
    # state_reward[s]: the reward for entering s where rewards depend on s' alone (grids,
    # FrozenLake): the "true reward" that inverse RL tries to recover.
    state_reward: np.ndarray
    layout: tuple[str, ...] | None = None  # the map, one string per row, where there is one
    # features[s, k]: the world's own state features, where it defines them (objectworld's
    # colour distances, binaryworld's neighbourhood, an uploaded mdp's `features`): what
    # inverse RL's reward may be a function of.
    features: np.ndarray | None = None

    @property
    def n_states(self) -> int:
        return int(self.transitions.shape[1])

    @property
    def n_actions(self) -> int:
        return int(self.transitions.shape[0]) // self.n_states

    @property
    def fixed(self) -> np.ndarray:
        """fixed[s]: states dynamic programming pins at value 0: terminal states, and walls,
        which no one is ever in (their greedy action means nothing either)."""
        return self.terminal | self.wall

    @property
    def P(self) -> np.ndarray:
        """Dense P[s, a, s'], for the small MDPs of inverse RL and tests."""
        if self.n_states > DENSE_STATES:
            raise ValueError(f"a dense P of {self.n_states} states is too large")
        return self.transitions.toarray().reshape(self.n_states, self.n_actions, self.n_states)

    def to_grid(self, per_state: np.ndarray) -> list[list[float]]:
        """A per-state vector as a rows x cols nested list (row-major), for 2-D worlds."""
        return np.asarray(per_state, dtype=np.float64).reshape(self.shape).tolist()


def from_triplets(
    rows: np.ndarray,
    next_states: np.ndarray,
    probabilities: np.ndarray,
    n_states: int,
    n_actions: int,
) -> sparse.csr_array:
    """P[(s, a), s'] from entries (s * A + a, s', p); duplicates add up."""
    P = sparse.csr_array(
        (probabilities, (rows, next_states)), shape=(n_states * n_actions, n_states)
    )
    P.sum_duplicates()
    return P
