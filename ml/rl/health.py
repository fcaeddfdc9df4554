"""The health checks the RL algorithms share: Q-values beyond any return the rewards allow,
and greedy returns that collapse after having been reached.

A Q-function is an expected discounted return, so a sound one stays within
max|r| x horizon, with horizon = 1 / (1 - gamma), or the time limit when gamma is 1. Q-values
far past that bound mean the updates feed on their own errors (bootstrapping, off-policy data
and function approximation together: van Hasselt et al. 2018, "Deep Reinforcement Learning
and the Deadly Triad"). DQN, TD3/DDPG and fitted Q iteration/evaluation all report
`rl/q_max_abs`; `q_values_explode` turns it into a warning (`ml.core.health.Suspicion`) whose
message names the knobs of the algorithm that raised it. `returns_collapse` watches
`eval/return` against the best a run has reached (`ReturnRange`, which the run checkpoints).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ml.core.health import Suspicion
from ml.core.hooks import Hooks
from ml.core.training import Run
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


def warn_if_ended_early(
    run: Run, hooks: Hooks, total_steps: int, kept_step: int | None, kept: str
) -> None:
    """A run a health warning ended early (the config's `stop_on`) says so on the job: at
    which step, on which warning, and which step's `kept` (network, actor) the model holds."""
    reason = run.ended_early
    if reason is not None:
        hooks.on_warning(
            run.step,
            "stopped_early",
            f"training stopped at step {run.step} of {total_steps} on {reason.code}, as the "
            f"config's stop_on asks; the model holds the {kept} of step {kept_step}",
        )


# -- returns that collapse ---------------------------------------------------------------------
class ReturnRange:
    """The first and the best greedy evaluation of a run, checkpointed with it."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.best: float | None = None

    def offer(self, value: float) -> None:
        self.first = value if self.first is None else self.first
        self.best = value if self.best is None else max(self.best, value)

    def collapsed(self, value: float, kept: float) -> bool:
        """True when `value` has lost more than 1 - `kept` of the progress from the first
        evaluation to the best; never before any progress."""
        if self.first is None or self.best is None or self.best <= self.first:
            return False
        return value < self.first + kept * (self.best - self.first)

    def state_dict(self) -> dict[str, float | None]:
        return {"first": self.first, "best": self.best}

    def load_state_dict(self, state: Mapping[str, float | None]) -> None:
        self.first, self.best = state["first"], state["best"]


# Share of the progress (first evaluation to best) an evaluation may lose before it counts.
RETURNS_KEPT = 0.5


def returns_collapse(returns: ReturnRange, *, remedy: str, patience: int = 3) -> Suspicion:
    """Warn when `patience` greedy evaluations in a row have lost more than half of what the
    run had gained from its first evaluation to its best (CartPole: from about 10 to 500,
    three evaluations below 255). One low evaluation is common (the greedy return swings
    between evaluations); a run that stays low has forgotten what it knew, which a value
    learner does when its buffer fills with good episodes only, or when its targets diverge.
    `remedy` says what it means for the algorithm and what to try."""
    return Suspicion(
        code="returns_collapse",
        message=f"the greedy return has stayed far below the best this run reached: {remedy}",
        metric="eval/return",
        test=lambda value: returns.collapsed(value, RETURNS_KEPT),
        patience=patience,
    )


__all__ = [
    "RETURNS_KEPT",
    "ReturnRange",
    "discount_horizon",
    "largest_stored_reward",
    "q_values_explode",
    "returns_collapse",
    "warn_if_ended_early",
]
