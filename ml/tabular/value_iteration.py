"""Value iteration (Bellman 1957; Sutton & Barto 2018, Section 4.4) on a tabular grid world.

Starting from V = 0, sweep the Bellman optimality backup

    V_{k+1}(s) = max_a sum_s' P(s' | s, a) [r(s, a, s') + gamma V_k(s')]      (S&B Eq. 4.10)

until max_s |V_{k+1}(s) - V_k(s)| < tolerance. The backup is a gamma-contraction, so V_k
converges to V* for gamma < 1, and for gamma = 1 when every policy ends in a terminal state
with no positive reward to collect on the way. The greedy policy of the last Q is optimal.

The environment is a text grid (`ml.tabular.gridworld.GridEnv`) or Gymnasium's FrozenLake-v1 read
from its own transition table, so V* on slippery FrozenLake 4x4 is Gymnasium's: V*(start) =
0.0689 at gamma 0.9 and 0.5420 at gamma 0.99. The kernels live in `ml.tabular.dp`; this file
adds the config and the run's plumbing (V is all a resumed run needs, so resuming is exact),
and the model is a value table (`ml.tabular.models`). Nothing here is random: the seed is
recorded, not used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ml.core.algorithm import Algorithm
from ml.core.cost import CALL_OVERHEAD, Cost
from ml.core.hooks import Hooks
from ml.core.metadata import model_metadata
from ml.core.training import Run
from ml.tabular import dp
from ml.tabular.gridworld import ACTION_NAMES, EnvSpec, GridEnv, build_mdp, n_cells
from ml.tabular.models import TabularValueModel, mdp_description, mdp_shapes

LOG_INTERVAL = 10  # sweeps between "dp/delta" metrics and progress reports


# -- config ------------------------------------------------------------------------------------
class ValueIterationConfig(BaseModel):
    """What to solve and when to stop; the defaults solve Russell & Norvig's 4x3 world."""

    model_config = ConfigDict(extra="forbid")

    env: EnvSpec = Field(
        default_factory=lambda: GridEnv(),
        description="The MDP: a text grid (kind 'grid') or FrozenLake-v1 (kind 'frozen_lake').",
    )
    discount: float = Field(
        0.99,
        ge=0.0,
        le=1.0,
        description="Discount factor gamma; 1 is allowed for grids whose step reward is not "
        "positive (every cell can reach a terminal one or pays to wait) and for FrozenLake.",
    )
    tolerance: float = Field(
        1e-8, gt=0.0, le=1.0, description="Stop when max_s |V_k+1(s) - V_k(s)| is below this."
    )
    max_iterations: int = Field(
        100_000, ge=1, le=10_000_000, description="Most sweeps before giving up on converging."
    )
    checkpoint_interval: int = Field(
        1_000, ge=1, le=10_000_000, description="Sweeps between checkpoints of V."
    )

    @model_validator(mode="after")
    def _bounded_values(self) -> ValueIterationConfig:
        if self.discount >= 1.0 and isinstance(self.env, GridEnv) and self.env.step_reward > 0.0:
            raise ValueError(
                "discount 1 with a positive step_reward has unbounded values (wandering "
                "forever pays); use discount < 1 or a step_reward <= 0"
            )
        return self


# -- cost --------------------------------------------------------------------------------------
def cost(config: ValueIterationConfig, *, datasets: Mapping[str, Any] | None = None) -> Cost:
    """Estimated operations of a run (`ml.core.cost`): max_iterations x one sweep, a sweep
    being the dense backup sum_s' P[s, a, s'] V[s'] (2 S A S for S states, A = 4 actions;
    every state is a successor of the dense P) with the max over actions, plus the
    overhead of its NumPy calls and of the run's callback, and building the MDP. A stop is
    checked after every sweep, so one step is one sweep (or the build, before the first
    check). A config that converges stops earlier."""
    states, actions = n_cells(config.env), len(ACTION_NAMES)
    sweep = 2 * states * actions * states + 4 * states * actions + CALL_OVERHEAD
    build = build_cost(states, actions)
    return Cost(
        total=config.max_iterations * sweep + build,
        per_step=max(sweep, build),
        total_fields=("max_iterations", "env.layout"),
        step_fields=("env.layout",),
    )


def build_cost(states: int, actions: int) -> float:
    """Building P[s, a, s'] (a Python loop over states and actions) and R = P r."""
    return states * actions * (2 * states + CALL_OVERHEAD / 10)


# -- training ----------------------------------------------------------------------------------
def train(
    config: ValueIterationConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
) -> ValueIterationModel:
    """Run value iteration to the tolerance; NumPy on the CPU (`device` is unused)."""
    mdp = build_mdp(config.env)
    V = np.zeros(mdp.n_states)  # V[s] of the latest sweep: all a checkpoint needs
    run = Run(hooks, config, log_interval=LOG_INTERVAL)
    run.track(V=V)
    run.start(resume)

    def after_sweep(iteration: int, V_k: np.ndarray, delta: float) -> None:
        run.step = iteration
        V[:] = V_k
        run.metrics.set("dp/delta", delta)
        if delta >= config.tolerance:  # once converged there is nothing to save or stop
            run.end_step()
            run.stop_if_asked()

    result = dp.value_iteration(
        mdp.P,
        mdp.R,
        config.discount,
        terminal=mdp.terminal,
        tolerance=config.tolerance,
        max_iterations=config.max_iterations,
        V0=V,
        start_iteration=run.step,
        callback=after_sweep,
    )
    start_value = float(mdp.start @ result.V)
    run.finish({"dp/start_value": start_value})
    metadata = model_metadata(
        kind=ValueIterationModel.kind,
        algorithm="value_iteration",
        config=config,
        seed=seed,
        shapes=mdp_shapes(mdp),
        summary={
            "iterations": result.iterations,
            "converged": result.converged,
            "delta": result.delta,
            "start_value": start_value,
        },
        env=mdp_description(mdp),
    )
    return ValueIterationModel(metadata, V=result.V, Q=result.Q)


# -- model -------------------------------------------------------------------------------------
class ValueIterationModel(TabularValueModel):
    """The optimal values V*[s] and Q*[s, a] of a grid world, found by value iteration."""

    kind: ClassVar[str] = "value_iteration"


ALGORITHM = Algorithm(
    name="value_iteration",
    family="dp",
    description="Value iteration on a tabular grid world or FrozenLake: optimal values, "
    "Q-values and the greedy policy.",
    config=ValueIterationConfig,
    train=train,
    model=ValueIterationModel,
    queue="cpu",
    cost=cost,
)
