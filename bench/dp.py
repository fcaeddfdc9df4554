"""Value iteration to the same accuracy: Crucible vs pymdptoolbox vs plain NumPy/SciPy.

A sweep is memory-bound and costs about the same in every library; what differs is how many
sweeps each needs before its values are within 1e-6 of V*. So every side here is run to
that accuracy, checked against the exact V* (policy iteration with exact solves), not to its
own stopping rule:

- Crucible: `ml.tabular.dp.value_iteration` with tolerance 1e-6 (Jacobi sweeps with
  MacQueen's bounds on dense MDPs, topological Gauss-Seidel on grids).
- pymdptoolbox's ValueIteration: its span rule stops early but returns the last iterate, not
  the bounds' midpoint, so its V can be far off (the row prints how far with its default
  epsilon). It is timed running exactly the number of sweeps after which its iterate first
  is within 1e-6 of V* (found beforehand with V* at hand): an oracle stopping rule, the best
  any rule could do for it.
- plain NumPy (dense) or scipy.sparse (grids): Jacobi sweeps with the textbook guarantee,
  stop when gamma / (1 - gamma) max|V_k+1 - V_k| < 1e-6.

Each side runs REPEATS times, interleaved (A B C A B C ...), on one BLAS and one torch
thread (printed); the table shows the median and the range, and the ratio of medians.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import mdptoolbox.mdp
import numpy as np
import torch
from scipy import sparse
from threadpoolctl import threadpool_info, threadpool_limits

from ml.tabular import dp
from ml.tabular.gridworld import GridEnv, build_grid

ACCURACY = 1e-6
REPEATS = 3


def random_mdp(n_states: int, n_actions: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    P = rng.random((n_states, n_actions, n_states)) ** 8  # P[s, a, s'], peaked rows
    P /= P.sum(axis=2, keepdims=True)
    R = rng.normal(size=(n_states, n_actions))  # R[s, a]
    return P, R


def plain_jacobi(P: Any, R: np.ndarray, discount: float, terminal: np.ndarray) -> np.ndarray:
    """Textbook value iteration: Q = R + gamma P V over flattened (s, a) rows, stop on the
    sup-norm guarantee."""
    n_states, n_actions = R.shape
    flat = P.reshape(n_states * n_actions, n_states) if isinstance(P, np.ndarray) else P
    V = np.zeros(n_states)
    while True:
        V_new = (R + discount * (flat @ V).reshape(n_states, n_actions)).max(axis=1)
        V_new[terminal] = 0.0
        change = float(np.max(np.abs(V_new - V)))
        V = V_new
        if discount / (1 - discount) * change < ACCURACY:
            return V


def sweeps_to_accuracy(P: np.ndarray, R: np.ndarray, discount: float, v_star: np.ndarray) -> int:
    """The first k with |T^k 0 - V*| <= ACCURACY: when an oracle would stop plain sweeps."""
    n_states, n_actions = R.shape
    flat = P.reshape(n_states * n_actions, n_states)
    V = np.zeros(n_states)
    for k in range(1, 1_000_000):
        V = (R + discount * (flat @ V).reshape(n_states, n_actions)).max(axis=1)
        if np.max(np.abs(V - v_star)) <= ACCURACY:
            return k
    raise RuntimeError("value iteration never reached the accuracy")


def toolbox(P_toolbox: np.ndarray, R: np.ndarray, discount: float, sweeps: int) -> np.ndarray:
    """pymdptoolbox's ValueIteration, exactly `sweeps` backups (stopping rule off)."""
    vi = mdptoolbox.mdp.ValueIteration(P_toolbox, R, discount, max_iter=sweeps)
    vi.max_iter, vi.thresh = sweeps, 0.0
    vi.run()
    return np.asarray(vi.V)


def timed(sides: dict[str, Callable[[], np.ndarray]]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(REPEATS):
        for name, run in sides.items():  # interleaved: A B C A B C ...
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def show(work: str, times: dict[str, list[float]], errors: dict[str, float], notes: str) -> None:
    print(f"{work}  ({notes})")
    ours = statistics.median(times["crucible"])
    for name, samples in times.items():
        median = statistics.median(samples)
        print(
            f"  {name:<14} median {median * 1e3:9.1f} ms  [{min(samples) * 1e3:8.1f} .. "
            f"{max(samples) * 1e3:8.1f}]  max|V - V*| {errors[name]:.1e}  "
            f"crucible is x{median / ours:6.1f} faster",
            flush=True,
        )


def dense(n_states: int, n_actions: int, discount: float, seed: int) -> None:
    P, R = random_mdp(n_states, n_actions, seed)
    no_terminal = np.zeros(n_states, dtype=bool)
    v_star = dp.policy_iteration(P, R, discount).V
    oracle = sweeps_to_accuracy(P, R, discount, v_star)
    P_toolbox = np.ascontiguousarray(P.transpose(1, 0, 2))
    default = mdptoolbox.mdp.ValueIteration(P_toolbox, R, discount)  # epsilon 0.01
    default.run()
    default_error = float(np.max(np.abs(np.asarray(default.V) - v_star)))
    sides = {
        "crucible": lambda: (
            dp.value_iteration(P, R, discount, tolerance=ACCURACY, max_iterations=1_000_000).V
        ),
        "pymdptoolbox": lambda: toolbox(P_toolbox, R, discount, oracle),
        "numpy": lambda: plain_jacobi(P, R, discount, no_terminal),
    }
    errors = {name: float(np.max(np.abs(run() - v_star))) for name, run in sides.items()}
    ours = dp.value_iteration(P, R, discount, tolerance=ACCURACY, max_iterations=1_000_000)
    show(
        f"random dense MDP {n_states}x{n_actions}, gamma {discount}",
        timed(sides),
        errors,
        f"sweeps: crucible {ours.iterations}, pymdptoolbox {oracle} (oracle); pymdptoolbox "
        f"with its own rule: {default.iter} sweeps, max|V - V*| {default_error:.1e}",
    )


def grid(side: int, discount: float) -> None:
    start = time.perf_counter()
    mdp = build_grid(GridEnv(size=(side, side), slip=0.2))
    built = time.perf_counter() - start
    P = sparse.csr_array(mdp.transitions)
    sides = {
        "crucible": lambda: (
            dp.value_iteration(
                P, mdp.R, discount, terminal=mdp.fixed, tolerance=ACCURACY, max_iterations=1_000_000
            ).V
        ),
        "scipy.sparse": lambda: plain_jacobi(P, mdp.R, discount, mdp.fixed),
    }
    reference = dp.value_iteration(
        P, mdp.R, discount, terminal=mdp.fixed, tolerance=1e-9, max_iterations=1_000_000
    ).V
    errors = {name: float(np.max(np.abs(run() - reference))) for name, run in sides.items()}
    show(
        f"open grid {side}x{side} ({side * side} states), gamma {discount}, slip 0.2",
        timed(sides),
        errors,
        f"building the MDP: {built:.1f} s, not timed; V* to 1e-9",
    )


def main() -> None:
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        blas = ", ".join(f"{i['internal_api']} {i['num_threads']}" for i in threadpool_info())
        print(f"threads: torch {torch.get_num_threads()}, BLAS/OpenMP: {blas}")
        dense(500, 4, 0.99, seed=0)
        dense(2000, 8, 0.99, seed=1)
        grid(100, 0.99)
        grid(1000, 0.99)


if __name__ == "__main__":
    main()
