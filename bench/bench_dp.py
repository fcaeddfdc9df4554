"""Value iteration: Crucible's vectorised kernel vs pymdptoolbox, same sweeps, same MDP.

Both run exactly `sweeps` Bellman backups (tolerance switched off), so the ratio compares
the cost of the same work; the resulting values are checked to agree.
"""

from __future__ import annotations

import mdptoolbox.mdp
import numpy as np

from bench.common import best_time, report
from ml.tabular import dp
from ml.tabular.gridworld import FrozenLakeEnv, build_mdp


def random_mdp(n_states: int, n_actions: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    P = rng.random((n_states, n_actions, n_states)) ** 8  # P[s, a, s'], peaked rows
    P /= P.sum(axis=2, keepdims=True)
    R = rng.normal(size=(n_states, n_actions))  # R[s, a]
    return P, R


def compare(work: str, P: np.ndarray, R: np.ndarray, discount: float, sweeps: int) -> None:
    def ours() -> np.ndarray:
        return dp.value_iteration(P, R, discount, tolerance=0.0, max_iterations=sweeps).V

    P_toolbox = np.ascontiguousarray(P.transpose(1, 0, 2))  # P[a, s, s']

    def anchor() -> np.ndarray:
        vi = mdptoolbox.mdp.ValueIteration(P_toolbox, R, discount, max_iter=sweeps)
        vi.max_iter, vi.thresh = sweeps, 0.0  # exactly `sweeps` backups, like ours
        vi.run()
        return np.asarray(vi.V)

    t_ours, v_ours = best_time(ours)
    t_anchor, v_anchor = best_time(anchor)
    gap = float(np.max(np.abs(v_ours - v_anchor)))
    report(work, t_ours, "pymdptoolbox", t_anchor, f"max |dV| = {gap:.1e}")


def main() -> None:
    lake = build_mdp(FrozenLakeEnv(map_name="8x8"))
    # pymdptoolbox has no notion of terminal states: compare on the same absorbing MDP.
    compare("value iteration, FrozenLake 8x8, 1000 sweeps", lake.P, lake.R, 0.99, 1000)
    P, R = random_mdp(500, 4, seed=0)
    compare("value iteration, random MDP 500x4, 200 sweeps", P, R, 0.95, 200)
    P, R = random_mdp(1000, 8, seed=1)
    compare("value iteration, random MDP 1000x8, 50 sweeps", P, R, 0.95, 50)


if __name__ == "__main__":
    main()
