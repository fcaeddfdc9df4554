"""What MaxEnt IRL and MaxEnt Deep IRL share: the config's world, features, demonstrations
and horizon; the problem the learner sees; and the reports that judge a learned reward.

The learner sees the world's dynamics (terminal states absorbing), the features and the
demonstrations' states and actions; never the world's reward. When the demonstrations come
from an expert for that reward (`demonstrations.source = expert`), the reports also judge
the learned reward against it, the way the IRL papers do:

- `irl/evd`, the expected value difference (Levine et al. 2011): the true value, from the
  world's start distribution, of the optimal policy minus that of the policy optimal for the
  learned reward (0 is perfect); `irl/expected_value_ratio` is 1 - EVD / |V*|;
- `irl/epic`, the EPIC distance (Gleave et al. 2021) between learned and true reward: a
  reward is only identified up to potential shaping and scale, and EPIC is blind to both
  (0 identical up to those, 1 opposite);
- `irl/reward_correlation` and `irl/reward_spearman`: Pearson and Spearman correlation of
  learned and true per-state reward (walls left out; the true one is the reward for
  entering a state on grids, the reward of being in it elsewhere).

Whatever the source, they report what needs no true reward: `irl/nll`, the demonstrations'
mean negative log-likelihood per step under the soft policy; `irl/feature_gap`, the norm of
the gap between the demonstrations' and the soft policy's feature expectations (the
gradient's, without prior); `irl/occupancy_gap`, the largest gap of a state's discounted
visits; and `irl/objective`, the max-ent objective J.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from scipy import sparse

from ml.core.cost import CALL_OVERHEAD, vi_sweeps
from ml.core.errors import ConfigError, TrainingAborted
from ml.core.metadata import model_metadata
from ml.core.seeding import numpy_rng
from ml.core.training import Interrupt, Run, never
from ml.data import Dataset
from ml.irl import demonstrations as demos_from
from ml.irl import metrics
from ml.irl.demonstrations import DatasetDemos, DemoSource, ExpertDemos, ModelDemos
from ml.irl.features import FeatureKind, Features
from ml.irl.maxent import (
    Demonstrations,
    Dynamics,
    SoftSolution,
    finite_horizon,
    infinite_horizon,
    soft_values,
)
from ml.irl.models import RewardModel
from ml.tabular import dp
from ml.tabular.gridworld import GridEnv
from ml.tabular.mdp import TabularMDP
from ml.tabular.models import mdp_description, mdp_shapes
from ml.tabular.objectworld import BinaryWorldEnv, ObjectWorldEnv
from ml.tabular.toy_text import CliffWalkingEnv, TaxiEnv
from ml.tabular.worlds import EnvSpec, MDPEnv, build_mdp, size_of

# The worlds with features of their own (`features: world`).
WITH_FEATURES = (ObjectWorldEnv, BinaryWorldEnv, MDPEnv)
MAX_REWARD = 1e6  # |r| beyond which a learned reward has diverged
MAX_STATES = 1 << 18  # worlds of up to 512 x 512 cells
# A finite-horizon pass keeps V[k, s] for every step of the longest demonstration: at most
# this many values (256 MB).
MAX_PASS_VALUES = 1 << 25
VI_TOLERANCE = 1e-8
REWARD_SCALE = 10.0  # learned rewards are of this order: what a solve's sweep bound assumes
LOG_INTERVAL = 10  # gradient steps between the cheap reports (gap, likelihood, progress)

DEFAULT_LAYOUT = [
    "S....",
    ".##..",
    ".....",
    ".#.#.",
    "....G",
]


class IRLConfig(BaseModel):
    """The world, the demonstrations, the horizon and when to stop."""

    model_config = ConfigDict(extra="forbid")

    env: EnvSpec = Field(
        default_factory=lambda: GridEnv(layout=list(DEFAULT_LAYOUT), slip=0.1),
        description="The world: a grid (the default: 5x5 with walls and a goal), "
        "frozen_lake, taxi, cliff_walking, objectworld, binaryworld, or an uploaded mdp. Its "
        "reward is the hidden truth an `expert` demonstrates; the learner never sees it.",
    )
    discount: float = Field(
        0.95,
        ge=0.0,
        le=0.999,
        description="Discount of the demonstrator's returns, of the max-ent model and of the "
        "final policy (below 1: goals are absorbing in inverse RL, so nothing ends).",
    )
    demonstrations: DemoSource = Field(
        default_factory=ExpertDemos,
        description="Where the demonstrations come from: an `expert` for the world's reward "
        "(generated from the job's seed), an uploaded `dataset` of trajectories, or a finished "
        "`model` rolled out in the world.",
    )
    features: FeatureKind = Field(
        "onehot",
        description="State features the reward is a function of: onehot (a free table), "
        "coordinates (scaled, squared and multiplied), terrain (a grid map's free / goal / "
        "hazard) or world (the world's own: objectworld, binaryworld, an mdp dataset's).",
    )
    horizon: Literal["finite", "infinite"] = Field(
        "finite",
        description="finite: the demonstrator plans for its episode's remaining steps "
        "(time-varying soft policy, Ziebart 2010); infinite: a stationary soft policy for the "
        "discounted infinite horizon.",
    )
    max_iterations: int = Field(
        200,
        ge=1,
        le=100_000,
        # `iterations` was this field's name until 2026-11-22; accepted until v2.
        validation_alias=AliasChoices("max_iterations", "iterations"),
        description="Most gradient steps (`iterations`, its old name, is still accepted).",
    )
    tolerance: float = Field(
        1e-3,
        gt=0.0,
        le=100.0,
        description="Stop when the gradient's norm (the feature-expectation gap, with the "
        "prior's pull) is below this ...",
    )
    occupancy_tolerance: float = Field(
        1e-3,
        ge=0.0,
        le=100.0,
        description="... or when no state's discounted visit count differs from the "
        "demonstrations' by more than this (imitation's `linf_eps`; 0 turns it off).",
    )
    eval_interval: int = Field(
        50,
        ge=1,
        le=100_000,
        description="Gradient steps between reports against the true reward (EVD, EPIC, "
        "correlations: each solves the learned reward's MDP); also at the end.",
    )
    checkpoint_interval: int = Field(
        50, ge=1, le=100_000, description="Gradient steps between checkpoints."
    )

    # Until 2026-12-07 the expert's demonstrations were set here; still accepted (and moved
    # into `demonstrations`), never written back.
    n_demos: int | None = Field(
        None,
        ge=1,
        le=10_000,
        exclude=True,
        deprecated=True,
        description="Deprecated: `demonstrations.n_demos`.",
    )
    demo_length: int | None = Field(
        None,
        ge=1,
        le=1_000,
        exclude=True,
        deprecated=True,
        description="Deprecated: `demonstrations.length`.",
    )
    random_starts: bool | None = Field(
        None,
        exclude=True,
        deprecated=True,
        description="Deprecated: `demonstrations.random_starts`.",
    )

    @model_validator(mode="after")
    def _old_fields(self) -> IRLConfig:
        fields = self.__dict__  # read past the deprecation warnings meant for callers
        old = {"n_demos": "n_demos", "length": "demo_length", "random_starts": "random_starts"}
        given = {new: fields[name] for new, name in old.items() if fields[name] is not None}
        if not given:
            return self
        if "demonstrations" in self.model_fields_set:
            raise ValueError(
                "n_demos, demo_length and random_starts set the expert's demonstrations; give "
                "them inside `demonstrations` instead"
            )
        self.demonstrations = ExpertDemos(**given)
        fields.update(n_demos=None, demo_length=None, random_starts=None)
        return self

    @model_validator(mode="after")
    def _fits(self) -> IRLConfig:
        states, _, _ = size_of(self.env)
        if states > MAX_STATES:
            raise ValueError(f"inverse RL works on worlds of at most {MAX_STATES} states")
        if not isinstance(self.demonstrations, DatasetDemos):
            check_pass(self.horizon, self.demonstrations.length, states)
        if self.features == "terrain" and not isinstance(self.env, GridEnv):
            raise ValueError(
                "terrain features are read from a grid's map; this world is not a grid: use "
                "onehot, coordinates or world"
            )
        if self.features == "world" and not isinstance(self.env, WITH_FEATURES):
            raise ValueError(
                "features 'world' are the world's own, and only objectworld, binaryworld and "
                "uploaded mdp datasets (with a `features` array) have them; use onehot, "
                "coordinates or terrain"
            )
        demos = self.demonstrations
        soft = isinstance(demos, ExpertDemos) and demos.policy == "soft_optimal"
        if soft and self.discount >= 1.0:
            raise ValueError("a soft-optimal expert needs discount < 1")
        return self


@dataclass(frozen=True)
class Truth:
    """The world's reward and its optimum: for reports only, never for learning."""

    R: np.ndarray  # R[s, a], the task's
    state_reward: np.ndarray  # r[s]
    v_star: np.ndarray  # V*[s]


@dataclass
class Problem:
    """What the learner sees, and the truth when an expert demonstrated."""

    config: IRLConfig
    mdp: TabularMDP  # the task, with its true reward
    dynamics: Dynamics  # terminal states absorbing
    features: Features
    demos: Demonstrations
    mu_expert: np.ndarray  # mu_E[s, a]
    truth: Truth | None
    warm_V: np.ndarray | None = None  # infinite horizon: the last soft values, a warm start

    @functools.cached_property
    def injections(self) -> sparse.csr_array:
        """inject[k, s]: where episodes start, by decisions left (`Demonstrations`)."""
        return self.demos.injections(self.mdp.n_states)

    def solve(self, reward: np.ndarray, interrupt: Interrupt = never) -> SoftSolution:
        """The soft-optimal model of reward r[s, 1] or r[s, a], fitted to the demonstrations."""
        S = self.mdp.n_states
        if self.config.horizon == "finite":
            return finite_horizon(
                self.dynamics,
                reward,
                self.injections,
                self.config.discount,
                self.mu_expert,
                self.demos,
                interrupt,
            )
        start = self.demos.start_distribution(S)
        solution, V = infinite_horizon(
            self.dynamics,
            reward,
            start,
            self.config.discount,
            self.mu_expert,
            self.demos,
            self.warm_V,
            interrupt,
        )
        if self.warm_V is None:
            self.warm_V = V
        else:  # in place: the caller may checkpoint this array
            self.warm_V[...] = V
        return solution

    def gap(self, solution: SoftSolution) -> np.ndarray:
        """mu_E[s, a] - rho[s, a]: the objective's gradient with respect to r[s, a]."""
        return self.mu_expert - solution.occupancy

    def converged(self, solution: SoftSolution, gradient_norm: float) -> bool:
        occupancy_gap = float(np.abs(self.gap(solution).sum(axis=1)).max())
        return gradient_norm < self.config.tolerance or (
            occupancy_gap <= self.config.occupancy_tolerance
        )

    def cheap_report(self, solution: SoftSolution) -> dict[str, float]:
        state_gap = self.gap(solution).sum(axis=1)  # g[s]
        return {
            "irl/objective": solution.objective,
            "irl/nll": float(-solution.log_likelihoods.mean()),
            "irl/feature_gap": float(np.linalg.norm(self.features.pull_back(state_gap))),
            "irl/occupancy_gap": float(np.abs(state_gap).max()),
        }

    def optimal_for(self, reward: np.ndarray, interrupt: Interrupt = never) -> dp.VIResult:
        """Value iteration for the learned reward r(s) or r(s, a), received in s, on the
        absorbing world; `interrupt` may stop it between two sweeps."""
        R = np.broadcast_to(reward, (self.mdp.n_states, self.mdp.n_actions)).copy()
        return dp.value_iteration(
            self.dynamics.P,
            R,
            self.config.discount,
            tolerance=VI_TOLERANCE,
            max_iterations=1_000_000,
            callback=lambda *_: interrupt(),
        )

    def true_report(self, reward: np.ndarray, interrupt: Interrupt = never) -> dict[str, float]:
        """EVD, EPIC and correlations of the learned reward (empty without a true reward)."""
        truth = self.truth
        if truth is None:
            return {}
        mdp, discount = self.mdp, self.config.discount
        policy = self.optimal_for(reward, interrupt).policy
        # EVD is >= 0 but for rounding (an optimal policy's -2e-11 would read as a gain).
        evd = metrics.expected_value_difference(
            mdp.transitions,
            truth.R,
            policy,
            discount,
            mdp.start,
            terminal=mdp.fixed,
            v_star=truth.v_star,
        )
        evd = max(evd, 0.0)
        v_star = float(mdp.start @ truth.v_star)
        entered = ~mdp.wall
        per_state = np.asarray(reward).mean(axis=1)  # r[s]
        weights = entered / entered.sum()
        epic = metrics.epic_distance(
            self.dynamics.P,
            metrics.DecomposedReward(in_state_action=np.where(mdp.terminal[:, None], 0.0, truth.R)),
            metrics.DecomposedReward(
                in_state_action=reward[:, 0] if reward.shape[1] == 1 else reward
            ),
            discount,
            state_weights=weights,
        )
        return {
            "irl/evd": evd,
            "irl/expected_value_ratio": 1.0 - evd / max(abs(v_star), 1e-12),
            "irl/epic": epic,
            "irl/reward_correlation": metrics.pearson(
                per_state[entered], truth.state_reward[entered]
            ),
            "irl/reward_spearman": metrics.spearman(
                per_state[entered], truth.state_reward[entered]
            ),
        }


def check_bounded(step: int, reward: np.ndarray) -> None:
    """A reward past MAX_REWARD has diverged: without a prior, demonstrations whose visits no
    policy reproduces exactly (sampled ones, on a world with chance) give the objective no
    maximum, and the weights would grow until the soft passes overflow."""
    largest = float(np.abs(reward).max())
    if not np.isfinite(largest) or largest > MAX_REWARD:
        raise TrainingAborted(
            "diverged",
            f"the learned reward diverged (|r| reached {largest:.3g} at step {step}): no "
            "reward reproduces these demonstrations' visits exactly, and without a prior "
            "nothing bounds it; set l2 (maxent_irl) or weight_decay (deep_maxent_irl) above 0",
            step=step,
        )


def check_pass(horizon: str, length: int, states: int) -> None:
    """A finite-horizon pass over demonstrations of `length` steps fits in memory."""
    if horizon == "finite" and length * states > MAX_PASS_VALUES:
        raise ConfigError(
            f"demonstrations of {length} steps on {states} states need {length * states} soft "
            f"values at once, more than the {MAX_PASS_VALUES} a finite-horizon pass may keep: "
            "use shorter demonstrations or horizon 'infinite'",
            field="demonstrations",
        )


def load_world(config: IRLConfig, datasets: Mapping[str, Any] | None) -> TabularMDP:
    return build_mdp(config.env, datasets)


# -- the run's start, reports and end, as both algorithms have them ---------------------------
def start(
    run: Run,
    config: IRLConfig,
    mdp: TabularMDP,
    features: Features,
    *,
    seed: int,
    resume: Mapping[str, Any] | None,
    datasets: Mapping[str, Any] | None,
    models: Mapping[str, Any] | None,
    **tracked: Any,
) -> Problem:
    """Checkpoint `tracked` and the soft values, start the run (from `resume`), then make the
    problem: its demonstrations are drawn from the seed, not checkpointed, so a resumed run
    has the same ones."""
    warm_V = np.zeros(mdp.n_states)  # infinite horizon: the last soft values, a warm start
    run.track(**tracked, soft_values=warm_V)
    run.start(resume)
    problem = make_problem(
        config,
        mdp,
        features,
        numpy_rng(seed),
        datasets=datasets,
        models=models,
        interrupt=run.interrupt_if_asked,
    )
    problem.warm_V = warm_V
    return problem


def log_step(run: Run, problem: Problem, solution: SoftSolution, reward: np.ndarray) -> None:
    """After a step: the free reports every LOG_INTERVAL steps, those against the true
    reward r[s, 1] or r[s, a] every `eval_interval`; then the step's end."""
    config = problem.config
    if run.due(LOG_INTERVAL) and run.step < config.max_iterations:
        report = problem.cheap_report(solution)
        if run.step % config.eval_interval == 0:
            report |= problem.true_report(reward, run.interrupt_if_asked)
        run.log(report)
    run.end_step()


ModelT = TypeVar("ModelT", bound=RewardModel)


def finish(
    run: Run,
    problem: Problem,
    model_class: type[ModelT],
    *,
    seed: int,
    reward: np.ndarray,
    solution: SoftSolution,
    n_features: int,
    **arrays: Any,
) -> ModelT:
    """The final report and the model: the values and greedy policy optimal for the learned
    reward r[s, 1] or r[s, a], its soft policy; every solve before the last report, so a stop
    still gets in and the resumed run reports once."""
    interrupt, config, mdp = run.interrupt_if_asked, problem.config, problem.mdp
    final = problem.cheap_report(solution) | problem.true_report(reward, interrupt)
    solved = problem.optimal_for(reward, interrupt)
    _, soft_policy = soft_values(problem.dynamics, reward, config.discount, interrupt=interrupt)
    run.finish(final)
    summary = {name.removeprefix("irl/"): value for name, value in final.items()}
    metadata = model_metadata(
        kind=model_class.kind,
        algorithm=model_class.kind,
        config=config,
        seed=seed,
        shapes={**mdp_shapes(mdp), "n_features": n_features},
        summary={**summary, "iterations": run.step},
        env=mdp_description(mdp),
    )
    return model_class(
        metadata,
        reward=reward[:, 0] if reward.shape[1] == 1 else reward,  # r[s] or r[s, a]
        soft_policy=soft_policy,
        V=solved.V,
        Q=solved.Q,
        terminal=mdp.terminal,
        wall=mdp.wall,
        **arrays,
    )


def make_problem(
    config: IRLConfig,
    mdp: TabularMDP,
    features: Features,
    rng: np.random.Generator,
    *,
    datasets: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
    interrupt: Interrupt = never,
) -> Problem:
    """The demonstrations (drawn with `rng` when generated) and what the learner sees of
    them; `interrupt` may stop this set-up between two pieces of work."""
    P = demos_from.absorbing(mdp)
    spec = config.demonstrations
    truth = None
    if isinstance(spec, DatasetDemos):
        demos = demos_from.from_dataset(demos_from.resolve_dataset(spec, datasets), mdp)
        check_pass(config.horizon, int(demos.lengths.max()), mdp.n_states)
    else:
        if isinstance(spec, ModelDemos):
            pi = demos_from.model_policy(spec, models, mdp)
        else:
            truth, pi = expert(config, mdp, P, spec, interrupt)
        starts = demos_from.start_distribution(mdp, spec)
        demos = demos_from.roll_out(P, pi, mdp.terminal, starts, spec, rng, interrupt)
    return Problem(
        config=config,
        mdp=mdp,
        dynamics=Dynamics(P),
        features=features,
        demos=demos,
        mu_expert=demos.counts(mdp.n_states, mdp.n_actions, config.discount),
        truth=truth,
    )


def expert(
    config: IRLConfig,
    mdp: TabularMDP,
    P: Any,
    spec: ExpertDemos,
    interrupt: Interrupt = never,
) -> tuple[Truth, np.ndarray]:
    """The world's optimum, and the expert's pi[s, a]: optimal (value iteration on the
    task), or soft-optimal for the task's reward on the absorbing world."""
    solved = dp.value_iteration(
        mdp.transitions,
        mdp.R,
        config.discount,
        terminal=mdp.fixed,
        tolerance=VI_TOLERANCE,
        max_iterations=1_000_000,
        callback=lambda *_: interrupt(),
    )
    truth = Truth(R=mdp.R, state_reward=mdp.state_reward, v_star=solved.V)
    if spec.policy == "optimal":
        return truth, np.eye(mdp.n_actions)[solved.policy]
    R = np.where(mdp.terminal[:, None], 0.0, mdp.R)  # R[s, a], nothing more once absorbed
    _, pi = soft_values(Dynamics(P), R, config.discount, interrupt=interrupt)
    return truth, pi


def check_dataset(config: IRLConfig, datasets: Mapping[str, Any] | None) -> None:
    """At submission: each uploaded dataset is of the kind its field takes, and uploaded
    demonstrations fit the world (from the datasets' summaries)."""
    if isinstance(config.env, MDPEnv):
        world = _summary(config.env.dataset.id, datasets)
        _check_kind(world, "mdp", "env.dataset.id")
        if world is not None and config.features == "world" and "n_features" not in world:
            raise ConfigError(
                "features 'world' need the mdp dataset's own `features` array, and this one "
                "has none; use onehot or coordinates",
                field="features",
            )
    spec = config.demonstrations
    if not isinstance(spec, DatasetDemos):
        return
    summary = _summary(spec.dataset.id, datasets)
    if summary is None:
        return
    _check_kind(summary, "trajectories", "demonstrations.dataset.id")
    states, actions, _ = size_of(config.env, datasets)
    demos_from.check_summary(summary, states, actions, shape_of(config.env, states))
    check_pass(config.horizon, demos_from.longest_episode(summary), states)


def shape_of(env: Any, n_states: int) -> tuple[int, ...]:
    """How a world's states lay out, without building it (flat for an uploaded mdp)."""
    if isinstance(env, GridEnv):
        return env.shape
    if isinstance(env, ObjectWorldEnv | BinaryWorldEnv):
        return (env.size, env.size)
    if isinstance(env, MDPEnv):
        return (n_states,)
    if isinstance(env, TaxiEnv):
        return (5, 5, 5, 4)
    if isinstance(env, CliffWalkingEnv):
        return (4, 12)
    side = math.isqrt(n_states)  # FrozenLake's square maps
    return (side, side)


def _summary(dataset_id: str, datasets: Mapping[str, Any] | None) -> dict[str, Any] | None:
    found = (datasets or {}).get(dataset_id)
    if found is None:
        return None
    if isinstance(found, Dataset):
        return {**found.summary, "kind": found.kind}
    return dict(found)


def _check_kind(summary: dict[str, Any] | None, kind: str, field: str) -> None:
    found = None if summary is None else summary.get("kind")
    if found is not None and found != kind:
        raise ConfigError(f"dataset is a {found} dataset; {field} takes {kind}", field=field)


def horizon_of(config: IRLConfig, datasets: Mapping[str, Any] | None) -> int:
    """The longest demonstration: the backward pass's length."""
    spec = config.demonstrations
    if isinstance(spec, DatasetDemos):
        found = (datasets or {}).get(spec.dataset.id)
        summary = found.summary if isinstance(found, Dataset) else dict(found or {})
        return demos_from.longest_episode(summary)
    return spec.length


def pass_cost(config: IRLConfig, datasets: Mapping[str, Any] | None) -> tuple[float, float, float]:
    """(one evaluation of the max-ent model, one value-iteration solve, the set-up) in
    operations: a backward and a forward step each cost two products over P's non-zeros and
    about 12 operations per state-action (the log-sum-exp, the policy, the flow)."""
    states, actions, nonzeros = size_of(config.env, datasets)
    step = 4 * nonzeros + 12 * states * actions + CALL_OVERHEAD
    if config.horizon == "finite":
        steps = 2 * horizon_of(config, datasets)
    else:  # soft sweeps to the fixed point (warm-started) and the occupancy's sum
        steps = 2 * int(np.log(1e-9) / np.log(max(config.discount, 1e-3))) + 2
    evaluation = steps * step
    sweep = 2 * nonzeros + 4 * states * actions + CALL_OVERHEAD
    # Value iteration (at most the contraction's bound of sweeps, for rewards within
    # REWARD_SCALE) and an exact policy evaluation (a sparse factorisation).
    sweeps = vi_sweeps(
        config.discount, tolerance=VI_TOLERANCE, reward_scale=REWARD_SCALE, cap=10**6
    )
    solve = sweeps * sweep + 50 * nonzeros
    spec = config.demonstrations
    rollouts = 0.0
    if not isinstance(spec, DatasetDemos):
        rollouts = spec.length * (spec.n_demos * (actions + 20) + CALL_OVERHEAD)
    return evaluation, solve, solve + rollouts + 30 * nonzeros
