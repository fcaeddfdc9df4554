"""What Fitted Q Iteration (`ml.rl.fqi`) and Fitted Q Evaluation (`ml.rl.fqe`) share.

Both turn a fixed set of transitions (s, a, r, s', terminated) into a Q-function by a
sequence of supervised regressions (Ernst, Geurts and Wehenkel 2005, "Tree-Based Batch Mode
Reinforcement Learning", JMLR 6, Section 3; Le, Voloshin and Yue 2019, "Batch Policy
Learning under Constraints", Algorithm 3): Q_0 = 0, and Q_k is a regressor fitted on the
inputs (s, a) and the targets

    y = r + gamma * (1 - terminated) * V_{k-1}(s')

where V_{k-1}(s') = max_a' Q_{k-1}(s', a') for FQI and sum_a' pi(a'|s') Q_{k-1}(s', a') for
FQE. Only the bootstrap differs, so this module holds the rest:

- the config fields both share (`DataFields`): the environment, where the transitions come
  from, the regressor, the iterations and the discount;
- the Q-function (`QFunction`) over a regressor of `ml.rl.regressors`;
- the loop (`iterate`) on the `ml.core.training.Run` skeleton, with its health check
  (`fitted_values_explode`);
- the evaluations, the cost estimate, and the model class both kinds extend
  (`FittedQModel`).

The transitions and the policies over discrete actions are in `ml.rl.transitions`; the
regressors, fitted with scikit-learn and kept as plain arrays, in `ml.rl.regressors`.

As in the paper, Q is one regressor whose inputs are the state variables and the action
(Ernst et al. 2005, Figure 1: the learning set's inputs are the pairs (x_t, u_t)): trees
split on the action's index like on any other input; the MLP, which would otherwise impose
an order on the actions, gets them one-hot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ml.core.cost import CALL_OVERHEAD, OPS_PER_SECOND, Cost, dataset_summary
from ml.core.health import Suspicion
from ml.core.hooks import Hooks
from ml.core.seeding import Stream, derived_seed
from ml.core.training import Interrupt, Run, never
from ml.data import UploadedDataset, resolve
from ml.rl import health
from ml.rl.car_on_hill import ENV_ID as CAR_ON_HILL
from ml.rl.car_on_hill import GRID_STATES, score_on_grid
from ml.rl.envs import DiscreteEnvId, EnvSpaces, env_spaces, evaluate, make_env
from ml.rl.models import DiscreteActionModel
from ml.rl.regressors import (
    MLP,
    PREDICT_PAIRS,
    ExtraTrees,
    GradientBoosting,
    Predictor,
    RandomForest,
    RegressorCost,
    RegressorSpec,
    TreeEnsemble,
    Zero,
    fit,
    predictor_from_state,
    regressor_cost,
)
from ml.rl.transitions import (
    Behaviour,
    Transitions,
    UniformPolicy,
    collect,
    from_dataset,
    policy_probabilities,
)

LOG_INTERVAL = 1  # iterations between metric reports: each is long


# -- config pieces -------------------------------------------------------------------------------


class CarOnHill(BaseModel):
    """Ernst et al.'s car on the hill (`ml.rl.car_on_hill`), the same as "CarOnHill-v0"."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["car_on_hill"] = Field("car_on_hill", description="Car on the hill.")


EnvSpec = DiscreteEnvId | CarOnHill


def env_id_of(env: EnvSpec) -> str:
    """The Gymnasium id an `env` field names."""
    return CAR_ON_HILL if isinstance(env, CarOnHill) else env


def default_gamma(env_id: str) -> float:
    """The discount when a config leaves it out: the paper's 0.95 on car on the hill, and
    0.99 elsewhere (CartPole's +1 per step needs the longer horizon to tell a pole about to
    fall from a balanced one)."""
    return 0.95 if env_id == CAR_ON_HILL else 0.99


class DataFields(BaseModel):
    """Where the transitions come from and how the Q-functions are fitted: the fields FQI
    and FQE share (each adds its own)."""

    model_config = ConfigDict(extra="forbid")

    env: EnvSpec = Field(
        "CarOnHill-v0",
        description='A discrete-action environment of `ml.rl.envs` ("CarOnHill-v0", '
        '"CartPole-v1", ...), or {"kind": "car_on_hill"}; transitions must come from it.',
    )
    dataset: UploadedDataset | None = Field(
        None,
        description="An uploaded `transitions` dataset of this environment; null collects "
        "transitions in the job with `behaviour`.",
    )
    behaviour: Behaviour = Field(
        default_factory=UniformPolicy,
        description="The policy that collects transitions when there is no dataset.",
    )
    collect_episodes: int = Field(
        1_000, ge=1, le=100_000, description="Episodes to collect (without a dataset)."
    )
    collect_steps: int = Field(
        60_000,
        ge=1,
        le=1_000_000,
        description="Most transitions to collect: collection ends at whichever of "
        "collect_episodes and collect_steps comes first (1,000 episodes of random pushes on "
        "car on the hill are about 60,000 steps).",
    )
    regressor: RegressorSpec = Field(
        default_factory=ExtraTrees,
        description='The supervised learner fitted at each iteration: "extra_trees", '
        '"random_forest", "gradient_boosting" or "mlp", or an object with its kind and '
        "settings.",
    )
    max_iterations: int = Field(
        50, ge=1, le=1_000, description="Regressions to run (the paper's N): Q_1 ... Q_N."
    )
    gamma: float | None = Field(
        None,
        ge=0.0,
        lt=1.0,
        description="Discount; null takes 0.95 on car on the hill (the paper's) and 0.99 "
        "elsewhere.",
    )
    checkpoint_interval: int = Field(
        10, ge=1, le=1_000, description="Iterations between checkpoints."
    )

    @property
    def env_id(self) -> str:
        return env_id_of(self.env)

    @property
    def discount(self) -> float:
        return default_gamma(self.env_id) if self.gamma is None else self.gamma


# -- the config's transitions ------------------------------------------------------------------


def transitions_for(
    config: DataFields,
    *,
    seed: int,
    spaces: EnvSpaces,
    datasets: Mapping[str, Any] | None,
    models: Mapping[str, Any] | None,
    interrupt: Interrupt = never,
) -> Transitions:
    """The config's uploaded dataset, or transitions collected with its behaviour."""
    if config.dataset is not None:
        return from_dataset(resolve(config.dataset, datasets, "transitions"), spaces, config.env_id)
    behaviour = policy_probabilities(
        config.behaviour, models, field="behaviour.model", spaces=spaces, env_id=config.env_id
    )
    return collect(
        config.env_id,
        behaviour,
        episodes=config.collect_episodes,
        max_steps=config.collect_steps,
        seed=seed,
        interrupt=interrupt,
    )


# -- the Q-function ------------------------------------------------------------------------------


class QFunction:
    """Q(s, a) as one regressor on (s, a): the action enters as its index, or one-hot for
    the MLP. Stateful for `Run.track`: its state is the regressor's arrays."""

    def __init__(self, n_actions: int, one_hot: bool, predictor: Predictor | None = None) -> None:
        self.n_actions = n_actions
        self.one_hot = one_hot
        self.predictor: Predictor = predictor or Zero()

    def inputs(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """x[B, d + 1] (or [B, d + A] one-hot) float32 for s[B, d] and a[B]."""
        observations = np.asarray(observations, dtype=np.float32).reshape(len(actions), -1)
        if self.one_hot:
            code = np.eye(self.n_actions, dtype=np.float32)[actions]  # [B, A]
        else:
            code = np.asarray(actions, dtype=np.float32)[:, None]  # [B, 1]
        return np.concatenate([observations, code], axis=1)

    def values(
        self,
        observations: np.ndarray,
        interrupt: Interrupt = never,
        predictor: Predictor | None = None,
    ) -> np.ndarray:
        """Q[B, A] for observations [B, d], in slices with `interrupt` in between; of
        `predictor` when given (a fit not adopted yet)."""
        predictor = predictor or self.predictor
        n = len(observations)
        q = np.empty((n, self.n_actions))
        trees = len(predictor.roots) if isinstance(predictor, TreeEnsemble) else 1
        rows = max(1, PREDICT_PAIRS // (self.n_actions * trees))
        for start in range(0, n, rows):
            interrupt()
            obs = observations[start : start + rows]
            m = len(obs)
            repeated = np.repeat(obs, self.n_actions, axis=0)  # [m * A, d], action-minor
            actions = np.tile(np.arange(self.n_actions), m)
            q[start : start + m] = predictor.predict(self.inputs(repeated, actions)).reshape(
                m, self.n_actions
            )
        return q

    def state_dict(self) -> dict[str, Any]:
        return self.predictor.state()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.predictor = predictor_from_state(state)


def greedy(q_function: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """The argmax policy of a Q-function, batched: observations [n, d] -> actions [n]."""

    def act(observations: np.ndarray) -> np.ndarray:
        return np.asarray(q_function(observations)).argmax(axis=1)

    return act


# -- the loop --------------------------------------------------------------------------------------


def fitted_values_explode(largest_reward: Callable[[], float], gamma: float) -> Suspicion:
    """`ml.rl.health.q_values_explode` with max|r| = largest_reward() (known once the
    transitions are): the regressions feed on their own extrapolation errors (an MLP's can;
    an average of targets cannot)."""
    return health.q_values_explode(
        largest_reward,
        1.0 / (1.0 - gamma),  # gamma < 1 (`DataFields.gamma`)
        values="Q-values",
        remedy="a tree regressor, a lower gamma or fewer iterations",
    )


Bootstrap = Callable[[np.ndarray], np.ndarray]  # Q_k(s', .)[N, A] -> V_k(s')[N]
Evaluation = Callable[[QFunction, Interrupt], Mapping[str, float]]


def iterate(
    run: Run,
    q: QFunction,
    data: Transitions,
    *,
    regressor: ExtraTrees | RandomForest | GradientBoosting | MLP,
    gamma: float,
    bootstrap: Bootstrap,
    seed: int,
    eval_interval: int,
    evaluation: Evaluation,
) -> None:
    """Run the regressions from `run.step` to its budget, fitting Q_{k+1} on
    y = r + gamma (1 - terminated) bootstrap(Q_k(s', .)); `q` holds Q_k (tracked by the run,
    so a checkpoint holds it) and takes Q_{k+1} only once it is fitted and evaluated on the
    next states, so a stop inside an iteration leaves the checkpoint at Q_k.

    Metrics per iteration: `dp/delta`, max |Q_{k+1} - Q_k| over the next states and every
    action (the sup-norm change a stopping rule would watch), and
    `rl/q_mean`, `rl/q_max_abs` over the same; `evaluation(q)` every `eval_interval`
    iterations except the last (the caller evaluates the final Q-function itself).
    """
    # Each iteration's regressor seed, drawn up front: no generator state to checkpoint.
    seeds = np.random.default_rng(derived_seed(seed, Stream.NOISE)).integers(
        2**31 - 1, size=run.total
    )
    if run.step >= run.total:  # resumed from a stop in the final evaluation
        return
    x = q.inputs(data.observations, data.actions)  # x[N, F]
    not_terminal = ~data.terminated
    next_q = q.values(data.next_observations, run.interrupt_if_asked)  # Q_k(s', a')[N, A]
    while run.step < run.total:
        run.stop_if_asked()
        targets = data.rewards + gamma * not_terminal * bootstrap(next_q)  # y[N]
        fitted = fit(
            regressor, x, targets, seed=int(seeds[run.step]), interrupt=run.interrupt_if_asked
        )
        new_next_q = q.values(data.next_observations, run.interrupt_if_asked, predictor=fitted)
        delta = float(np.abs(new_next_q - next_q).max())
        q.predictor, next_q = fitted, new_next_q
        run.advance()
        run.values["delta"] = delta
        run.metrics.set("dp/delta", delta)
        run.metrics.set("rl/q_mean", float(next_q.mean()))
        run.metrics.set("rl/q_max_abs", float(np.abs(next_q).max()))
        if run.step < run.total and run.step % eval_interval == 0:
            run.log(evaluation(q, run.interrupt_if_asked))
        run.end_step()


# -- evaluation ------------------------------------------------------------------------------------


def greedy_evaluation(
    q_function: Callable[[np.ndarray], np.ndarray],
    env_id: str,
    *,
    episodes: int,
    seed: int,
    gamma: float,
    interrupt: Interrupt = never,
) -> dict[str, float]:
    """`eval/return`: the mean undiscounted return of the greedy policy over `episodes`
    episodes from reset(seed + i) (`ml.rl.envs.evaluate`); on car on the hill also the
    paper's grid: `eval/grid_score`, the mean discounted return from its 289 start states,
    and `eval/grid_success`, the fraction of them from which the car reaches the top."""
    policy = greedy(q_function)
    metrics = {"eval/return": float(np.mean(evaluate(policy, env_id, episodes, seed, interrupt)))}
    if env_id == CAR_ON_HILL:
        grid = score_on_grid(policy, gamma=gamma, interrupt=interrupt)
        metrics |= {"eval/grid_score": grid.score, "eval/grid_success": grid.success}
    return metrics


GRID_STEP = 5e-3 * OPS_PER_SECOND  # `step_batch` of the grid's cars: 2,500 NumPy calls, 5 ms


def greedy_evaluation_cost(
    regressor: RegressorCost, env_id: str, spaces: EnvSpaces, episodes: int
) -> tuple[float, float]:
    """(total, largest piece between stop checks) of one `greedy_evaluation`: every time
    step of the episodes (up to the time limit) predicts their Q-values in one call and
    steps each environment; the grid's time steps do the same for its 289 cars."""
    per_step = episodes * (spaces.n_actions * regressor.per_input + CALL_OVERHEAD)
    piece = per_step
    if env_id == CAR_ON_HILL:
        grid_step = len(GRID_STATES) * spaces.n_actions * regressor.per_input + GRID_STEP
        per_step += grid_step
        piece = max(piece, grid_step)
    return spaces.max_episode_steps * per_step, piece


def start_observations(env_id: str, n: int, seed: int) -> np.ndarray:
    """s_0[n, d] float32: the first observations of episodes reset(seed + i), i < n (the
    states `ml.rl.envs.evaluate` starts from with the same seed)."""
    env = make_env(env_id)
    try:
        return np.stack([env.reset(seed=seed + i)[0] for i in range(n)]).astype(np.float32)
    finally:
        env.close()


def data_summary(data: Transitions, gamma: float) -> dict[str, Any]:
    """What a model's summary says of its transitions."""
    return {"transitions": len(data), "episodes": data.episodes, "gamma": gamma}


# -- cost ----------------------------------------------------------------------------------------


def transitions_estimate(
    config: DataFields, datasets: Mapping[str, Any] | None, spaces: EnvSpaces
) -> int:
    """N: the uploaded dataset's rows, or at most what the collection may gather."""
    if config.dataset is not None:
        rows = dataset_summary(datasets, config.dataset.id).get("rows")
        return int(rows) if isinstance(rows, int) and rows > 0 else config.collect_steps
    return min(config.collect_steps, config.collect_episodes * spaces.max_episode_steps)


def fitting_cost(
    config: DataFields,
    *,
    datasets: Mapping[str, Any] | None,
    evaluation: Callable[[RegressorCost], tuple[float, float]],
) -> Cost:
    """A run's estimated operations: collecting N transitions (an environment step and a
    policy call each), then per iteration one regression on them and the Q-values of their
    next states (N x actions inputs), plus the evaluations, which `evaluation(regressor)`
    prices as (total, largest piece between two stop checks). Per step, the largest of: a
    collection step, a piece of a fit, a prediction call, an evaluation's piece."""
    spaces = env_spaces(config.env_id)
    n = transitions_estimate(config, datasets, spaces)
    regressor = regressor_cost(config.regressor, n, spaces)
    collect_step = 0.0 if config.dataset is not None else 3 * CALL_OVERHEAD
    next_values = n * spaces.n_actions * regressor.per_input
    iteration = regressor.fit + next_values
    evaluations, eval_piece = evaluation(regressor)
    prediction_call = regressor.slice_rows * spaces.n_actions * regressor.per_input
    return Cost(
        total=n * collect_step + config.max_iterations * iteration + evaluations,
        per_step=max(collect_step, regressor.fit_piece, prediction_call, eval_piece),
        total_fields=("max_iterations", "collect_steps", "regressor", "collect_episodes"),
        step_fields=("collect_steps", "regressor"),
    )


# -- the model -----------------------------------------------------------------------------------


class FittedQModel(DiscreteActionModel):
    """A fitted Q-function over an environment's observations and discrete actions; the
    base of the `fqi` and `fqe` kinds (not a kind itself)."""

    kind: ClassVar[str] = ""

    def __init__(self, metadata: dict[str, Any], q: QFunction) -> None:
        super().__init__(metadata)
        self.q = q

    def q_function(self, observations: np.ndarray) -> np.ndarray:
        """Q(s, a) [B, n_actions] for observations [B, observation_dim] (float32)."""
        x = np.asarray(observations, dtype=np.float32).reshape(-1, self.observation_dim)
        return self.q.values(x)

    def state(self) -> dict[str, Any]:
        return {"q": self.q.state_dict()}

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> FittedQModel:
        shapes = metadata["shapes"]
        q = QFunction(int(shapes["n_actions"]), bool(shapes["one_hot_actions"]))
        q.load_state_dict(state["q"])
        return cls(metadata, q)


def model_shapes(spaces: EnvSpaces, env_id: str, q: QFunction) -> dict[str, Any]:
    return {
        "observation_dim": spaces.observation_dim,
        "n_actions": spaces.n_actions,
        "env_id": env_id,
        "one_hot_actions": q.one_hot,
    }


def q_function_for(
    regressor: ExtraTrees | RandomForest | GradientBoosting | MLP, n_actions: int
) -> QFunction:
    return QFunction(n_actions, one_hot=isinstance(regressor, MLP))


def start(
    config: DataFields,
    *,
    seed: int,
    hooks: Hooks,
    resume: dict[str, Any] | None,
    datasets: Mapping[str, Any] | None,
    models: Mapping[str, Any] | None,
) -> tuple[Run, QFunction, Transitions]:
    """What FQI and FQE do first: the run (its checkpoint holds Q_k; a stop may come during
    collection), restored from `resume`, and the transitions, collected again from the seed
    or read from the dataset. The health check compares |Q| with the largest reward of the
    transitions, known once they are."""
    spaces = env_spaces(config.env_id)
    q = q_function_for(config.regressor, spaces.n_actions)
    largest_reward = 1.0
    run = Run(
        hooks,
        config,
        log_interval=LOG_INTERVAL,
        # The lambda reads largest_reward when the check runs, after it is set below.
        suspicions=[fitted_values_explode(lambda: largest_reward, config.discount)],
    )
    run.track(q=q)
    run.start(resume)
    data = transitions_for(
        config,
        seed=seed,
        spaces=spaces,
        datasets=datasets,
        models=models,
        interrupt=run.interrupt_if_asked,
    )
    largest_reward = float(np.abs(data.rewards).max())
    return run, q, data


def nodes_of(q: QFunction) -> int:
    """The size of a tree regressor (its nodes), for summaries; 0 for others."""
    predictor = q.predictor
    return predictor.size if isinstance(predictor, TreeEnsemble) else 0


__all__ = [
    "CarOnHill",
    "DataFields",
    "FittedQModel",
    "QFunction",
    "fitted_values_explode",
    "greedy",
    "greedy_evaluation",
    "iterate",
    "transitions_for",
]
