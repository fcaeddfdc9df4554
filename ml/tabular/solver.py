"""What the dynamic-programming algorithms share: the config's world and stopping fields, the
checks that a world can be solved, and the end of a run (warning or failing when it did not
converge, the model).

`value_iteration`, `policy_iteration` and `policy_evaluation` each read top to bottom in their
own file; the kernels are `ml.tabular.dp`, the worlds `ml.tabular.worlds`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ml.core.cost import CALL_OVERHEAD, Cost
from ml.core.errors import ConfigError, TrainingAborted
from ml.core.hooks import Hooks
from ml.core.metadata import model_metadata
from ml.tabular.gridworld import GridEnv
from ml.tabular.mdp import TabularMDP
from ml.tabular.models import TabularValueModel, mdp_description, mdp_shapes
from ml.tabular.worlds import EnvSpec, build_mdp, size_of


class SolverConfig(BaseModel):
    """The fields every dynamic-programming config has; the defaults solve Russell &
    Norvig's 4x3 world."""

    model_config = ConfigDict(extra="forbid")

    env: EnvSpec = Field(
        default_factory=lambda: GridEnv(),
        description="The world: a text grid (kind 'grid', the default), Gymnasium's "
        "'frozen_lake', 'taxi' or 'cliff_walking', or an uploaded MDP (kind 'mdp').",
    )
    discount: float = Field(
        0.99,
        ge=0.0,
        le=1.0,
        description="Discount factor gamma; 1 only where every policy ends (terminal states "
        "reachable, no positive reward for wandering).",
    )
    require_convergence: bool = Field(
        False,
        description="Fail the job when max_iterations ends before convergence, instead of "
        "finishing with a warning.",
    )

    @model_validator(mode="after")
    def _bounded_values(self) -> SolverConfig:
        env = self.env
        if self.discount >= 1.0 and isinstance(env, GridEnv):
            if env.step_reward > 0.0 or (env.bump_reward or 0.0) > 0.0:
                raise ValueError(
                    "discount 1 with a positive step or bump reward has unbounded values "
                    "(wandering forever pays); use discount < 1 or rewards <= 0"
                )
            if env.size is None and not any(("G" in row or "H" in row) for row in env.rows_text()):
                raise ValueError(
                    "discount 1 needs a terminal cell (G or H): without one no episode ends "
                    "and every value is infinite"
                )
        return self


def load_world(config: SolverConfig, datasets: Mapping[str, Any] | None) -> TabularMDP:
    """The config's MDP, checked to be solvable with its discount."""
    mdp = build_mdp(config.env, datasets)
    if config.discount >= 1.0 and not mdp.terminal.any():
        raise ConfigError(
            "discount 1 needs terminal states, and this world has none: every value would "
            "be infinite; use discount < 1",
            field="discount",
        )
    return mdp


def world_cost(
    config: SolverConfig,
    datasets: Mapping[str, Any] | None,
    *,
    sweeps: int,
    total_fields: tuple[str, ...],
    per_sweep_factor: float = 1.0,
) -> Cost:
    """`sweeps` passes over P's non-zeros (2 operations each, plus 4 per state-action for the
    rewards and the max) and building the world (about 30 operations per non-zero: the
    vectorized builders, the sparse matrix, the breadth-first order of Gauss-Seidel). A stop
    is checked after every sweep."""
    states, actions, nonzeros = size_of(config.env, datasets)
    sweep = per_sweep_factor * (2 * nonzeros + 4 * states * actions) + CALL_OVERHEAD
    build = 30 * nonzeros + CALL_OVERHEAD
    return Cost(
        total=sweeps * sweep + build,
        per_step=max(sweep, build),
        total_fields=total_fields,
        step_fields=("env.layout", "env.size"),
    )


def check_converged(
    config: SolverConfig, hooks: Hooks, step: int, converged: bool, what: str
) -> None:
    """A run that ran out of iterations says so: a job warning, or a failure when the config
    requires convergence."""
    if converged:
        return
    message = (
        f"{what} did not converge within max_iterations = {step}; the values are not yet "
        "those of the fixed point: raise max_iterations or loosen the tolerance"
    )
    if config.require_convergence:
        raise TrainingAborted("not_converged", message, step=step)
    hooks.on_warning(step, "not_converged", message)


ModelT = TypeVar("ModelT", bound=TabularValueModel)


def value_model(
    model_class: type[ModelT],
    *,
    algorithm: str,
    config: SolverConfig,
    seed: int,
    mdp: TabularMDP,
    V: np.ndarray,
    Q: np.ndarray,
    policy: np.ndarray | None,
    summary: dict[str, Any],
) -> ModelT:
    """The model of a solved world, with the value from the start distribution."""
    metadata = model_metadata(
        kind=model_class.kind,
        algorithm=algorithm,
        config=config,
        seed=seed,
        shapes=mdp_shapes(mdp),
        summary={**summary, "start_value": float(mdp.start @ V)},
        env=mdp_description(mdp),
    )
    return model_class(metadata, V=V, Q=Q, terminal=mdp.terminal, wall=mdp.wall, policy=policy)
