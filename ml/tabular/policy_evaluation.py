"""Policy evaluation (Sutton & Barto 2018, Section 4.1): the values of a given policy.

Solves the Bellman expectation equation V^pi = r_pi + gamma P_pi V^pi (S&B Eq. 4.4) exactly,
a sparse LU solve up to `ml.tabular.dp.EXACT_SOLVE_STATES` states and Gauss-Seidel sweeps
to a 1e-10 bound above. The policy to evaluate is uniformly random (the default, as in S&B
Example 4.1, whose 4x4 grid gives a first row of 0, -14, -20, -22), a table given in the
config (one action per state, or one distribution per state), or the policy of a finished
tabular model on the same world, named by reference (`ml.core.references`). The model keeps
V^pi, Q^pi and the evaluated policy (its `policy`, not greedy in Q^pi). Nothing is random.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ml.core.algorithm import Algorithm
from ml.core.cost import Cost
from ml.core.errors import ConfigError, TrainingAborted
from ml.core.hooks import Hooks
from ml.core.references import ModelReference, resolve_model
from ml.core.training import Run
from ml.tabular import dp
from ml.tabular.mdp import TabularMDP
from ml.tabular.models import TabularValueModel
from ml.tabular.solver import SolverConfig, load_world, value_model, world_cost

MAX_TABLE = 1_000_000  # states a policy table in a config may list


class UniformPolicy(BaseModel):
    """Every action equally likely in every state."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["uniform"] = "uniform"


class TablePolicy(BaseModel):
    """A policy written out: one action per state, or one distribution per state."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["table"] = "table"
    actions: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, max_length=MAX_TABLE, description="The action taken in each state."
    )
    probabilities: list[list[Annotated[float, Field(ge=0.0, le=1.0)]]] | None = Field(
        None, max_length=MAX_TABLE, description="pi(a|s): one row per state, summing to 1."
    )

    @model_validator(mode="after")
    def _one_form(self) -> TablePolicy:
        if (self.actions is None) == (self.probabilities is None):
            raise ValueError("give exactly one of 'actions' or 'probabilities'")
        for i, row in enumerate(self.probabilities or []):
            if abs(sum(row) - 1.0) > 1e-6:
                raise ValueError(f"probabilities[{i}] sums to {sum(row):.6g}, not 1")
        return self


class ModelPolicy(ModelReference):
    """The policy of a finished tabular model (value or policy iteration, MaxEnt IRL) on the
    same world."""


Policy = Annotated[UniformPolicy | TablePolicy | ModelPolicy, Field(discriminator="kind")]


class PolicyEvaluationConfig(SolverConfig):
    """The world and the policy; the defaults evaluate the uniform policy on Russell &
    Norvig's 4x3 world."""

    policy: Policy = Field(
        default_factory=UniformPolicy,
        description="The policy to evaluate: {'kind': 'uniform'}, {'kind': 'table', "
        "'actions' | 'probabilities'} or {'kind': 'model', 'model': <id or name@alias>}.",
    )
    method: Literal["auto", "exact", "iterative"] = Field(
        "auto",
        description="'exact': a sparse LU solve; 'iterative': in-place sweeps (S&B Section "
        "4.1) to `tolerance`; 'auto': exact up to 100,000 states.",
    )
    tolerance: float = Field(
        1e-10, gt=0.0, le=1.0, description="Iterative: stop when V is within this of V^pi."
    )
    max_iterations: int = Field(100_000, ge=1, le=10_000_000, description="Iterative: most sweeps.")
    checkpoint_interval: int = Field(
        1_000, ge=1, le=10_000_000, description="Iterative: sweeps between checkpoints of V."
    )


def cost(config: PolicyEvaluationConfig, *, datasets: Mapping[str, Any] | None = None) -> Cost:
    """An exact solve costs about 50 sweeps, an iterative one max_iterations
    (`ml.tabular.solver.world_cost`)."""
    sweeps = 50 if config.method == "exact" else max(50, config.max_iterations)
    return world_cost(config, datasets, sweeps=sweeps, total_fields=("env", "max_iterations"))


def policy_matrix(
    config: PolicyEvaluationConfig, mdp: TabularMDP, models: Mapping[str, Any] | None
) -> np.ndarray:
    """pi[s, a] of the configured policy, checked against the world."""
    spec, n_states, n_actions = config.policy, mdp.n_states, mdp.n_actions
    if isinstance(spec, UniformPolicy):
        return np.full((n_states, n_actions), 1.0 / n_actions)
    if isinstance(spec, ModelPolicy):
        model = resolve_model(spec, models, field="policy.model")
        policy = getattr(model, "policy", None)
        if not isinstance(policy, np.ndarray) or policy.shape != (n_states,):
            raise ConfigError(
                f"model {spec.model!r} ({model.kind}) has no tabular policy over this world's "
                f"{n_states} states",
                field="policy.model",
            )
        return dp.policy_matrix(policy, n_actions)
    table = np.asarray(spec.actions if spec.actions is not None else spec.probabilities)
    field = "policy.actions" if spec.actions is not None else "policy.probabilities"
    if len(table) != n_states:
        raise ConfigError(
            f"the policy lists {len(table)} states; the world has {n_states}", field=field
        )
    if spec.actions is not None:
        if table.max() >= n_actions:
            raise ConfigError(f"actions are 0..{n_actions - 1}", field=field)
        return dp.policy_matrix(table.astype(np.int64), n_actions)
    if table.shape != (n_states, n_actions):
        raise ConfigError(f"each row needs {n_actions} probabilities", field=field)
    return table.astype(np.float64)


def train(
    config: PolicyEvaluationConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
) -> PolicyEvaluationModel:
    """V^pi and Q^pi of the configured policy."""
    mdp = load_world(config, datasets)
    pi = policy_matrix(config, mdp, models)  # pi[s, a]
    V = np.zeros(mdp.n_states)  # V[s] of the latest sweep (iterative): all a checkpoint needs
    run = Run(hooks, config, log_interval=10)
    run.track(V=V)
    run.start(resume)

    def after_sweep(sweep: int, V_k: np.ndarray, measure: float) -> None:
        run.step = sweep
        V[:] = V_k
        run.metrics.set("dp/delta", measure)
        if measure >= config.tolerance:
            run.end_step()
            run.stop_if_asked()

    try:
        V[:] = dp.policy_evaluation(
            mdp.transitions,
            mdp.R,
            pi,
            config.discount,
            terminal=mdp.fixed,
            V0=V.copy() if resume is not None else None,
            tolerance=config.tolerance,
            max_iterations=config.max_iterations,
            callback=after_sweep,
            exact={"auto": None, "exact": True, "iterative": False}[config.method],
        )
    except ValueError as exc:  # never ends with discount 1, or out of sweeps
        if "did not converge" not in str(exc):
            raise TrainingAborted("unbounded_values", str(exc), step=run.step) from None
        if config.require_convergence:
            raise TrainingAborted("not_converged", str(exc), step=run.step) from None
        hooks.on_warning(run.step, "not_converged", str(exc))
    Q = dp.bellman_optimality_backup(mdp.transitions, mdp.R, V, config.discount, mdp.fixed)
    run.finish({"dp/start_value": float(mdp.start @ V)})
    return value_model(
        PolicyEvaluationModel,
        algorithm="policy_evaluation",
        config=config,
        seed=seed,
        mdp=mdp,
        V=V,
        Q=Q,
        policy=pi.argmax(axis=1),
        summary={"policy": config.policy.kind},
    )


class PolicyEvaluationModel(TabularValueModel):
    """V^pi[s] and Q^pi[s, a] of an evaluated policy; `policy` is its most likely action."""

    kind: ClassVar[str] = "policy_evaluation"


ALGORITHM = Algorithm(
    name="policy_evaluation",
    family="dp",
    description="Policy evaluation: the exact values V^pi and Q^pi of a uniform, written-out "
    "or trained policy on a grid world, a toy-text environment or an uploaded MDP.",
    config=PolicyEvaluationConfig,
    train=train,
    model=PolicyEvaluationModel,
    queue="cpu",
    cost=cost,
    dataset_kinds=("mdp",),
)
