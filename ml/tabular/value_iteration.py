"""Value iteration (Bellman 1957; Sutton & Barto 2018, Section 4.4) on a finite MDP.

Sweep the Bellman optimality backup

    V_{k+1}(s) = max_a sum_s' P(s' | s, a) [r(s, a, s') + gamma V_k(s')]      (S&B Eq. 4.10)

until V is within `tolerance` of V*. The backup is a gamma-contraction, so V_k converges to V*
for gamma < 1, and for gamma = 1 when every policy ends in a terminal state with no positive
reward to collect on the way. The greedy policy of the last Q is optimal.

How the sweeps run and when they stop is `ml.tabular.dp`'s business (Gauss-Seidel in
topological order on grids, Jacobi with MacQueen's bounds elsewhere): the tolerance is a
bound on the distance to V*, not a change between sweeps. The worlds are `ml.tabular.worlds`
(text grids up to 10^6 cells, Gymnasium's toy-text environments, uploaded MDPs); V* on
slippery FrozenLake 4x4 is Gymnasium's: V*(start) = 0.0689 at gamma 0.9 and 0.5420 at 0.99.
V is all a resumed run needs, so resuming is exact. Nothing here is random: the seed is
recorded, not used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ml.core.algorithm import Algorithm
from ml.core.cost import Cost
from ml.core.hooks import Hooks
from ml.core.training import Run
from ml.tabular import dp
from ml.tabular.models import TabularValueModel
from ml.tabular.solver import SolverConfig, check_converged, load_world, value_model, world_cost

LOG_INTERVAL = 10  # sweeps between "dp/delta" metrics and progress reports


class ValueIterationConfig(SolverConfig):
    """What to solve and when to stop; the defaults solve Russell & Norvig's 4x3 world."""

    tolerance: float = Field(
        1e-8,
        gt=0.0,
        le=1.0,
        description="Stop when V is guaranteed within this of V* (max over states); with "
        "discount 1, when a sweep changes no value by more than this.",
    )
    sweeps: dp.Sweeps = Field(
        "auto",
        description="'gauss_seidel' (in place, outward from the terminal states), 'jacobi' "
        "(all states from the last sweep, with MacQueen's bounds) or 'auto' (Gauss-Seidel "
        "where there are terminal states).",
    )
    max_iterations: int = Field(
        100_000, ge=1, le=10_000_000, description="Most sweeps before giving up on converging."
    )
    checkpoint_interval: int = Field(
        1_000, ge=1, le=10_000_000, description="Sweeps between checkpoints of V."
    )


def cost(config: ValueIterationConfig, *, datasets: Mapping[str, Any] | None = None) -> Cost:
    """max_iterations sweeps (`ml.tabular.solver.world_cost`); a config that converges stops
    earlier."""
    return world_cost(
        config, datasets, sweeps=config.max_iterations, total_fields=("max_iterations", "env")
    )


def train(
    config: ValueIterationConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
) -> ValueIterationModel:
    """Run value iteration to the tolerance; NumPy on the CPU (`device` is unused)."""
    mdp = load_world(config, datasets)
    V = np.zeros(mdp.n_states)  # V[s] of the latest sweep: all a checkpoint needs
    run = Run(hooks, config, log_interval=LOG_INTERVAL)
    run.track(V=V)
    run.start(resume)

    def after_sweep(iteration: int, V_k: np.ndarray, measure: float) -> None:
        run.step = iteration
        V[:] = V_k
        run.metrics.set("dp/delta", measure)
        if measure >= config.tolerance:  # once converged there is nothing to save or stop
            run.end_step()
            run.stop_if_asked()

    result = dp.value_iteration(
        mdp.transitions,
        mdp.R,
        config.discount,
        terminal=mdp.fixed,
        tolerance=config.tolerance,
        max_iterations=config.max_iterations,
        V0=V if resume is not None else None,
        start_iteration=run.step,
        callback=after_sweep,
        sweeps=config.sweeps,
    )
    check_converged(config, hooks, result.iterations, result.converged, "value iteration")
    run.finish({"dp/start_value": float(mdp.start @ result.V)})
    return value_model(
        ValueIterationModel,
        algorithm="value_iteration",
        config=config,
        seed=seed,
        mdp=mdp,
        V=result.V,
        Q=result.Q,
        policy=None,
        summary={
            "iterations": result.iterations,
            "converged": result.converged,
            "delta": result.delta,
            "error_bound": result.error_bound,
        },
    )


class ValueIterationModel(TabularValueModel):
    """The optimal values V*[s] and Q*[s, a] of a finite world, found by value iteration."""

    kind: ClassVar[str] = "value_iteration"


ALGORITHM = Algorithm(
    name="value_iteration",
    family="dp",
    description="Value iteration on a grid world (up to 10^6 cells), Gymnasium's FrozenLake, "
    "Taxi or CliffWalking, or an uploaded MDP: optimal values, Q-values and the greedy "
    "policy, to a guaranteed accuracy.",
    config=ValueIterationConfig,
    train=train,
    model=ValueIterationModel,
    queue="cpu",
    cost=cost,
    dataset_kinds=("mdp",),
)
