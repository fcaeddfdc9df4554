"""The health check every value-based RL algorithm shares: Q-values beyond any return the
rewards allow.

A Q-function is an expected discounted return, so a sound one stays within
max|r| x horizon, with horizon = 1 / (1 - gamma), or the time limit when gamma is 1. Q-values
far past that bound mean the updates feed on their own errors (bootstrapping, off-policy data
and function approximation together: van Hasselt et al. 2018, "Deep Reinforcement Learning
and the Deadly Triad"). DQN, TD3/DDPG and fitted Q iteration/evaluation all report
`rl/q_max_abs`; `q_values_explode` turns it into a warning (`ml.core.health.Suspicion`) whose
message names the knobs of the algorithm that raised it.
"""

from __future__ import annotations

from collections.abc import Callable

from ml.core.health import Suspicion
from ml.rl.replay import ReplayBuffer


def discount_horizon(gamma: float, time_limit: int) -> float:
    """How many rewards a return adds up at most, in effect: 1 / (1 - gamma), or the time
    limit when gamma is 1 (the sum is then only bounded by the episode's end)."""
    return 1.0 / (1.0 - gamma) if gamma < 1.0 else float(time_limit)


def largest_stored_reward(buffer: ReplayBuffer) -> Callable[[], float]:
    """max|r| over the rewards `buffer` holds now (0 while it is empty), read at each test:
    the TD targets are built from those rewards only (with n-step returns they are n-step
    sums, which only loosens the bound)."""

    def largest() -> float:
        n = len(buffer)
        return float(buffer.rewards[:n].abs().max()) if n else 0.0

    return largest


def q_values_explode(
    largest_reward: Callable[[], float],
    horizon: float,
    *,
    remedy: str,
    values: str = "Q-values",
    metric: str = "rl/q_max_abs",
) -> Suspicion:
    """Warn "q_values_explode" when `metric` (the largest |Q| of a report) exceeds twice
    max(largest_reward() x horizon, 1): twice, so that noise in a sound estimate does not
    warn, and at least 2, so that zero rewards do not either. `largest_reward` is called at
    each test, since the rewards seen grow during a run (or are known only once the
    transitions are); `remedy` is what to try ("a smaller learning_rate, a lower gamma..."),
    `values` what the metric measures ("critic values")."""

    def explodes(q_max_abs: float) -> bool:
        return q_max_abs > 2.0 * max(largest_reward() * horizon, 1.0)

    return Suspicion(
        code="q_values_explode",
        message=f"{values} exceed twice the largest return the rewards allow: they are "
        f"diverging; try {remedy}",
        metric=metric,
        test=explodes,
    )


__all__ = ["discount_horizon", "largest_stored_reward", "q_values_explode"]
