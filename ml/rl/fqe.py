"""Fitted Q Evaluation (Le, Voloshin and Yue 2019, "Batch Policy Learning under
Constraints", ICML, Algorithm 3).

FQE estimates the value of a given policy pi from transitions some other policy collected
(off-policy evaluation). It is Fitted Q Iteration (`ml.rl.fqi`, Ernst et al. 2005) with the
max replaced by the policy: Q_0 = 0 and Q_k is a regressor fitted on the inputs (s, a) and
the targets

    y = r + gamma * sum_a' pi(a'|s') Q_{k-1}(s', a')            (0 past a terminal s')

so Q_k approaches Q^pi, and the policy's value at a state is
V^pi(s) = sum_a pi(a|s) Q^pi(s, a). Q_N is the value of the policy's first N steps, so N
(`max_iterations`) must make gamma^N small against the policy's episodes: on car on the
hill the uniform policy's value from the valley (-0.126 by Monte Carlo) needs about 100
iterations; 30 give -0.077. The policy is `{"kind": "model", "model": ref}`, the
(epsilon-)greedy policy of a finished model with Q-values passed in `models` (DQN, FQI...),
or `{"kind": "uniform"}`, whose expectation over the actions is taken exactly.

The estimate is reported at the start states: the mean V^pi(s_0) over `start_states`
states drawn from the environment's reset distribution with the run's evaluation seed
(`dp/start_value`; the states `ml.rl.envs.evaluate` starts from with that seed), and on car
on the hill also over the 289 start states of Ernst et al.'s grid (`dp/grid_value`), which
is comparable with their score of the policy (`ml.rl.car_on_hill.score_on_grid`). The
transitions, the regressors, checkpoints and resume are FQI's (`ml.rl.fitted`,
`ml.rl.transitions`, `ml.rl.regressors`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ml.core.algorithm import Algorithm
from ml.core.cost import Cost
from ml.core.hooks import Hooks
from ml.core.metadata import model_metadata
from ml.core.seeding import Stream, derived_seed
from ml.core.training import Interrupt
from ml.rl import fitted
from ml.rl.car_on_hill import ENV_ID as CAR_ON_HILL
from ml.rl.car_on_hill import GRID_STATES
from ml.rl.envs import env_spaces
from ml.rl.fitted import DataFields, FittedQModel, QFunction
from ml.rl.regressors import RegressorCost
from ml.rl.transitions import ModelPolicy, UniformPolicy, in_slices, policy_probabilities


class EvaluatedModel(ModelPolicy):
    """A finished model's greedy policy (epsilon-greedy with epsilon > 0)."""

    epsilon: float = Field(0.0, ge=0.0, le=1.0, description="Probability of a random action.")


class FQEConfig(DataFields):
    """Fitted Q Evaluation of `policy` from transitions of `behaviour` (or a dataset)."""

    policy: UniformPolicy | EvaluatedModel = Field(
        default_factory=UniformPolicy,
        discriminator="kind",
        description='The policy to evaluate: {"kind": "model", "model": "<id or '
        'name@alias>"} or {"kind": "uniform"}.',
    )
    start_states: int = Field(
        100,
        ge=1,
        le=10_000,
        description="Start states drawn from the environment's reset distribution at which "
        "the policy's value is estimated.",
    )
    eval_interval: int = Field(
        10, ge=1, le=1_000, description="Iterations between reports of the estimate."
    )


def cost(config: FQEConfig, *, datasets: Mapping[str, Any] | None = None) -> Cost:
    """Estimated operations (`ml.rl.fitted.fitting_cost`): collecting the transitions, per
    iteration a regression on them and the Q-values of their next states, and the estimate
    at the start states (and the grid) every eval_interval iterations and at the end. The
    evaluated model's own policy calls are not counted."""
    spaces = env_spaces(config.env_id)
    evaluations = config.max_iterations // config.eval_interval + 1
    states = config.start_states + (len(GRID_STATES) if config.env_id == CAR_ON_HILL else 0)

    def evaluation(regressor: RegressorCost) -> tuple[float, float]:
        rows = min(states, regressor.slice_rows)
        per_row = spaces.n_actions * regressor.per_input
        return evaluations * states * per_row, rows * per_row

    return fitted.fitting_cost(config, datasets=datasets, evaluation=evaluation)


def train(
    config: FQEConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
) -> FQEModel:
    """FQE (Algorithm 3 of Le et al. 2019) on the CPU (`device` is unused); `models` holds
    the finished models the config references (`policy.model`, `behaviour.model`)."""
    env_id, gamma = config.env_id, config.discount
    spaces = env_spaces(env_id)
    policy = policy_probabilities(
        config.policy, models, field="policy.model", spaces=spaces, env_id=env_id
    )
    run, q, data = fitted.start(
        config, seed=seed, hooks=hooks, resume=resume, datasets=datasets, models=models
    )
    # pi(a'|s')[N, A], fixed for the whole run
    next_pi = in_slices(policy, data.next_observations, run.interrupt_if_asked)

    # Where the value is estimated, and the policy's action probabilities there.
    starts = fitted.start_observations(env_id, config.start_states, derived_seed(seed, Stream.EVAL))
    places = {"dp/start_value": (starts, policy(starts))}
    if env_id == CAR_ON_HILL:
        grid = GRID_STATES.astype(np.float32)
        places["dp/grid_value"] = (grid, policy(grid))

    def estimate(q: QFunction, interrupt: Interrupt) -> dict[str, float]:
        """Mean V^pi(s) = sum_a pi(a|s) Q(s, a) over each set of states."""
        return {
            name: float((pi * q.values(states, interrupt)).sum(axis=1).mean())
            for name, (states, pi) in places.items()
        }

    fitted.iterate(
        run,
        q,
        data,
        regressor=config.regressor,
        gamma=gamma,
        bootstrap=lambda next_q: (next_pi * next_q).sum(axis=1),  # E_pi Q_k(s', a')
        seed=seed,
        eval_interval=config.eval_interval,
        evaluation=estimate,
    )
    final = estimate(q, run.interrupt_if_asked)
    run.finish(final)

    metadata = model_metadata(
        kind=FQEModel.kind,
        algorithm="fqe",
        config=config,
        seed=seed,
        shapes=fitted.model_shapes(spaces, env_id, q),
        summary={
            "iterations": run.step,
            **fitted.data_summary(data, gamma),
            "delta": run.values.get("delta"),
            "policy": config.policy.model_dump(mode="json"),
            "start_value": final["dp/start_value"],
            "start_states": config.start_states,
            **({"grid_value": final["dp/grid_value"]} if "dp/grid_value" in final else {}),
            "tree_nodes": fitted.nodes_of(q),
        },
    )
    return FQEModel(metadata, q)


class FQEModel(FittedQModel):
    """Q^pi of the evaluated policy, fitted by FQE; its summary holds the estimated value
    (`start_value`, and `grid_value` on car on the hill)."""

    kind: ClassVar[str] = "fqe"

    @property
    def policy_value(self) -> float:
        """The estimated value of the policy at the start states."""
        return float(self.metadata["summary"]["start_value"])


ALGORITHM = Algorithm(
    name="fqe",
    family="rl",
    description="Fitted Q Evaluation (Le, Voloshin and Yue 2019): off-policy evaluation of "
    "a finished model's greedy policy (or the uniform policy) from uploaded or collected "
    "transitions, by FQI's regressions with the policy's action in place of the max.",
    config=FQEConfig,
    train=train,
    model=FQEModel,
    queue="cpu",
    cost=cost,
    dataset_kinds=("transitions",),
    exact_resume=True,
)
