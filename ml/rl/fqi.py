"""Fitted Q Iteration (Ernst, Geurts and Wehenkel 2005, "Tree-Based Batch Mode Reinforcement
Learning", JMLR 6, Section 3 and its Figure 1).

From a fixed set of four-tuples (s, a, r, s'), FQI approximates the optimal Q-function by a
sequence of supervised regressions: Q_0 = 0 and, for k = 1..N, Q_k is a regressor fitted on
the inputs (s, a) and the outputs

    y = r + gamma * max_a' Q_{k-1}(s', a')                  (0 past a terminal s')

so Q_k is the optimal Q-function of the k-step problem, approximated from the data. The
greedy policy argmax_a Q_N(s, a) is the result. Any regressor fits the scheme; the paper
finds ensembles of regression trees best, and Extremely Randomized Trees best of all. The
defaults are theirs: Extra-Trees of M = 50 trees, grown until nodes hold fewer than
n_min = 2 samples, every input tried at each split (K = the number of inputs), Q one
regressor on (state, action) inputs, N = 50 iterations, gamma = 0.95 on car on the hill
(0.99 elsewhere, `ml.rl.fitted.default_gamma`), and transitions from 1,000 episodes of
uniformly random actions (on car on the hill from rest at the bottom of the valley, as
theirs: about 60,000 tuples).

The transitions are an uploaded `transitions` dataset (`dataset`) or are collected in the
job (`behaviour`: uniform, or epsilon-greedy on a finished model passed in `models`). Each
iteration logs the sup-norm change max |Q_k - Q_{k-1}| over the next states (`dp/delta`);
every `eval_interval` iterations and at the end the greedy policy plays `eval_episodes`
episodes (`eval/return`), and on car on the hill it is also scored on the paper's 289
start states (`eval/grid_score`, their score; `eval/grid_success`, the fraction reaching
the top). The Q-function is kept as arrays (`ml.rl.regressors.TreeEnsemble`, `MLPNet`), so
checkpoints and models are tensors only. A resumed run collects the same transitions again
from the seed and continues from the checkpointed Q_k: it ends with exactly the model of an
uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from ml.core.algorithm import Algorithm
from ml.core.cost import Cost
from ml.core.hooks import Hooks
from ml.core.metadata import model_metadata
from ml.core.seeding import Stream, derived_seed
from ml.core.training import Interrupt
from ml.rl import fitted
from ml.rl.envs import env_spaces, evaluate
from ml.rl.fitted import DataFields, FittedQModel, QFunction, greedy
from ml.rl.regressors import RegressorCost


class FQIConfig(DataFields):
    """Fitted Q Iteration; the defaults are Ernst et al.'s car-on-the-hill experiment."""

    eval_interval: int = Field(
        10, ge=1, le=1_000, description="Iterations between greedy evaluations."
    )
    eval_episodes: int = Field(10, ge=1, le=100, description="Episodes per greedy evaluation.")


def cost(config: FQIConfig, *, datasets: Mapping[str, Any] | None = None) -> Cost:
    """Estimated operations (`ml.core.cost`, `ml.rl.fitted.fitting_cost`): collecting the
    transitions, per iteration a regression on them and the Q-values of their next states,
    and a greedy evaluation every eval_interval iterations and at the end."""
    spaces = env_spaces(config.env_id)
    evaluations = config.max_iterations // config.eval_interval + 1

    def evaluation(regressor: RegressorCost) -> tuple[float, float]:
        one, piece = fitted.greedy_evaluation_cost(
            regressor, config.env_id, spaces, config.eval_episodes
        )
        return evaluations * one, piece

    return fitted.fitting_cost(config, datasets=datasets, evaluation=evaluation)


def train(
    config: FQIConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
) -> FQIModel:
    """FQI (Figure 1 of Ernst et al. 2005) on the CPU (`device` is unused); `models` holds
    the finished models the config references (`behaviour.model`), by reference."""
    env_id, gamma = config.env_id, config.discount
    spaces = env_spaces(env_id)
    run, q, data = fitted.start(
        config, seed=seed, hooks=hooks, resume=resume, datasets=datasets, models=models
    )
    eval_seed = derived_seed(seed, Stream.EVAL)

    def evaluation(q: QFunction, interrupt: Interrupt) -> dict[str, float]:
        return fitted.greedy_evaluation(
            q.values,
            env_id,
            episodes=config.eval_episodes,
            seed=eval_seed,
            gamma=gamma,
            interrupt=interrupt,
        )

    fitted.iterate(
        run,
        q,
        data,
        regressor=config.regressor,
        gamma=gamma,
        bootstrap=lambda next_q: next_q.max(axis=1),  # max_a' Q_k(s', a')
        seed=seed,
        eval_interval=config.eval_interval,
        evaluation=evaluation,
    )
    final = evaluation(q, run.interrupt_if_asked)
    run.finish(final)

    metadata = model_metadata(
        kind=FQIModel.kind,
        algorithm="fqi",
        config=config,
        seed=seed,
        shapes=fitted.model_shapes(spaces, env_id, q),
        summary={
            "iterations": run.step,
            **fitted.data_summary(data, gamma),
            "delta": run.values.get("delta"),
            "eval_return": final["eval/return"],
            "eval_episodes": config.eval_episodes,
            **{f"grid_{k[10:]}": v for k, v in final.items() if k.startswith("eval/grid_")},
            "tree_nodes": fitted.nodes_of(q),
        },
    )
    return FQIModel(metadata, q)


class FQIModel(FittedQModel):
    """A Q-function fitted by FQI: Q-values of observations, and its greedy policy."""

    kind: ClassVar[str] = "fqi"

    def evaluate_policy(self, episodes: int, seed: int) -> list[float]:
        """Undiscounted returns of the greedy policy in `episodes` fresh episodes, episode i
        from `reset(seed=seed + i)` (`ml.rl.envs.evaluate`)."""
        return evaluate(greedy(self.q_function), self.env_id, episodes, seed)


ALGORITHM = Algorithm(
    name="fqi",
    family="rl",
    description="Fitted Q Iteration (Ernst, Geurts and Wehenkel 2005): batch-mode RL by a "
    "sequence of regressions (Extra-Trees by default; random forests, gradient boosting or "
    "an MLP) on uploaded transitions or transitions collected in the job; discrete-action "
    "environments, car on the hill included.",
    config=FQIConfig,
    train=train,
    model=FQIModel,
    queue="cpu",
    cost=cost,
    dataset_kinds=("transitions",),
    exact_resume=True,
)
