"""Policy iteration (Howard 1960; Sutton & Barto 2018, Section 4.3) on a finite MDP.

Evaluate the current policy exactly, (I - gamma P_pi) V = r_pi (S&B Eq. 4.4), then make it
greedy in the resulting Q, and repeat until no state's action improves. Each step is a
policy at least as good as the last, and there are finitely many, so it ends, usually in a
handful of steps; the policy it ends with is optimal and its V is V* exactly (no tolerance).

Evaluation is a sparse LU solve up to `ml.tabular.dp.EXACT_SOLVE_STATES` states and
Gauss-Seidel sweeps to a 1e-10 bound above, each warm-started from the previous policy's
values. A stop is checked after every improvement step; a resumed run starts again from the
checkpointed policy, so resuming is exact. Nothing here is random.
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

# Sweeps an evaluation costs, for the cost estimate: a sparse solve or warm-started
# Gauss-Seidel sweeps cost about this many backups.
EVALUATION_SWEEPS = 50


class PolicyIterationConfig(SolverConfig):
    """What to solve; the defaults solve Russell & Norvig's 4x3 world."""

    max_iterations: int = Field(
        1_000, ge=1, le=100_000, description="Most improvement steps before giving up."
    )
    checkpoint_interval: int = Field(
        10, ge=1, le=100_000, description="Improvement steps between checkpoints."
    )


def cost(config: PolicyIterationConfig, *, datasets: Mapping[str, Any] | None = None) -> Cost:
    """max_iterations improvement steps of an evaluation (about EVALUATION_SWEEPS sweeps)
    and a backup each; real runs end after a handful."""
    steps = min(config.max_iterations, 100)  # PI converges in few steps (Puterman Th. 6.4.2)
    return world_cost(
        config,
        datasets,
        sweeps=steps,
        total_fields=("max_iterations", "env"),
        per_sweep_factor=EVALUATION_SWEEPS + 1,
    )


def train(
    config: PolicyIterationConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
) -> PolicyIterationModel:
    """Howard's policy iteration to a stable policy (`ml.tabular.dp.policy_iteration`)."""
    mdp = load_world(config, datasets)
    policy = np.zeros(mdp.n_states, dtype=np.int64)  # policy[s]: all a checkpoint needs
    run = Run(hooks, config, log_interval=1)
    run.track(policy=policy)
    run.start(resume)

    first = run.step

    def after_step(iteration: int, V: np.ndarray, improved: np.ndarray, changed: int) -> None:
        run.step = first + iteration
        policy[:] = improved
        run.metrics.set("dp/policy_changes", changed)
        run.metrics.set("dp/start_value", float(mdp.start @ V))
        if changed:  # once stable there is nothing to save or stop
            run.end_step()
            run.stop_if_asked()

    result = dp.policy_iteration(
        mdp.transitions,
        mdp.R,
        config.discount,
        terminal=mdp.fixed,
        max_iterations=config.max_iterations - first,
        policy0=policy.copy(),
        callback=after_step,
    )
    check_converged(config, hooks, run.step, result.converged, "policy iteration")
    run.finish({"dp/start_value": float(mdp.start @ result.V)})
    return value_model(
        PolicyIterationModel,
        algorithm="policy_iteration",
        config=config,
        seed=seed,
        mdp=mdp,
        V=result.V,
        Q=result.Q,
        policy=result.policy,
        summary={"iterations": run.step, "converged": result.converged},
    )


class PolicyIterationModel(TabularValueModel):
    """An optimal policy and its values V*[s], Q*[s, a], found by policy iteration."""

    kind: ClassVar[str] = "policy_iteration"


ALGORITHM = Algorithm(
    name="policy_iteration",
    family="dp",
    description="Howard's policy iteration on a grid world, Gymnasium's FrozenLake, Taxi or "
    "CliffWalking, or an uploaded MDP: an optimal policy and its exact values.",
    config=PolicyIterationConfig,
    train=train,
    model=PolicyIterationModel,
    queue="cpu",
    cost=cost,
    dataset_kinds=("mdp",),
)
