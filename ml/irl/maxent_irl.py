"""Maximum-Entropy inverse reinforcement learning (Ziebart, Maas, Bagnell & Dey 2008,
"Maximum Entropy Inverse Reinforcement Learning", AAAI).

An expert acts optimally for a reward we do not see. MaxEnt IRL models the demonstrations as
trajectories whose probability grows exponentially with their reward, P(tau) ∝ exp(theta . f_tau)
(Eq. 1-4), with a reward linear in state features, r(s) = theta . f(s), and fits theta by
maximum likelihood. The gradient of the log-likelihood is the gap between the expert's feature
counts and the counts the model expects (Eq. 6):

    grad L(theta) = f~ - sum_s D_s f(s)

where D_s are the expected state visitation frequencies of the max-ent policy, found by a
backward pass (soft value iteration, `ml.tabular.dp.soft_value_iteration`) and a forward pass
(`ml.tabular.dp.state_visitation`) over the demonstrations' horizon: Algorithm 1 of the
paper, in the log-space form of Ziebart 2010 that imitation's `mce_irl.py` uses. Gradient
ascent (Adam by default) runs until the gradient's norm falls below `tolerance`, or for
`max_iterations` steps. The demonstrations are drawn from the job's seed, and theta with the
optimiser's moments (and the last gradient's norm, for the final report) is all a checkpoint
holds, so a resumed run ends exactly where an uninterrupted one does, even when the stop
came inside the set-up, a gradient or a report (`Run.interrupt_if_asked`).

The setting: a `GridEnv` whose true reward (step, goal and hazard rewards, as the reward for
entering each cell) is hidden from the learner. Demonstrations come from the optimal policy of
that reward (value iteration), on the same grid with goals and hazards made absorbing so that a
demonstration of fixed length can stay in the goal. The learner sees only the map's
dynamics, the features and the demonstrated states. The trainer then reports, knowing the true
reward only for that purpose:

- "irl/reward_correlation": Pearson correlation of learned and true state rewards (walls,
  which no one can enter, left out);
- "irl/expected_value_ratio": the policy that is optimal for the learned reward (value
  iteration), evaluated under the true reward from the start cell S, as a fraction of the
  optimal value there: 1 - (V*(S) - V^pi(S)) / |V*(S)|, so 1 is optimal.

A Gaussian prior on theta (`l2`) matters with one-hot features: a deterministic expert never
enters most cells off its paths, and the data only says those cells are "worse"; without the
prior their rewards drift towards minus infinity at rates set by the optimiser. For the same
reason a hazard that the expert always avoids gets no reward of its own: the learner knows it
is avoided, not how bad it is. The policy stays near-optimal, but the reward correlation on a
5x5 grid with two hazards is about 0.6, against about 0.98 on the default hazard-free grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from ml.core.algorithm import Algorithm
from ml.core.cost import CALL_OVERHEAD, Cost, vi_sweeps
from ml.core.hooks import Hooks
from ml.core.metadata import model_metadata
from ml.core.seeding import numpy_rng
from ml.core.training import Interrupt, Run, never
from ml.tabular import dp
from ml.tabular.gridworld import ACTION_NAMES, GridEnv, build_grid, n_cells
from ml.tabular.mdp import TabularMDP
from ml.tabular.models import TabularValueModel, mdp_description, mdp_shapes, table_arrays

# Largest grid: the max-ent passes use dense P[s, a, s'].
MAX_CELLS = 1024
LOG_INTERVAL = 10  # gradient steps between metrics and progress reports
VI_TOLERANCE = 1e-8
# Entries of F[demos] gathered at once when counting the demonstrations' features (8 MB of
# float64): memory stays bounded on large grids, and a stop gets in between two chunks.
COUNT_CHUNK = 1 << 20

DEFAULT_LAYOUT = [
    "S....",
    ".##..",
    ".....",
    ".#.#.",
    "....G",
]


# -- config ------------------------------------------------------------------------------------
class MaxEntIRLConfig(BaseModel):
    """The grid, the demonstrations and the optimiser; the defaults recover the 5x5 default
    grid's reward (Pearson correlation above 0.8) and a near-optimal policy."""

    model_config = ConfigDict(extra="forbid")

    env: GridEnv = Field(
        default_factory=lambda: GridEnv(layout=list(DEFAULT_LAYOUT), slip=0.1),
        description="The grid world; its rewards are the hidden truth the expert optimises.",
    )
    discount: float = Field(
        0.95,
        ge=0.0,
        le=0.999,
        description="Discount of the expert, of the max-ent model's trajectory rewards and "
        "of the final policy (below 1: goals are absorbing here, so nothing ends).",
    )
    n_demos: int = Field(100, ge=1, le=10_000, description="Number of expert demonstrations.")
    demo_length: int = Field(
        25, ge=2, le=500, description="States per demonstration (the max-ent horizon)."
    )
    random_starts: bool = Field(
        True,
        description="Start demonstrations from random non-terminal cells instead of S, which "
        "shows the expert's preferences over the whole grid, not along one path.",
    )
    features: Literal["onehot", "terrain", "coordinates"] = Field(
        "onehot",
        description="State features of the linear reward: 'onehot' (one weight per cell), "
        "'terrain' (free / goal / hazard indicators, read from the map) or 'coordinates' "
        "(row and column scaled to [0, 1], with their squares and product).",
    )
    optimizer: Literal["adam", "sgd"] = Field(
        "adam", description="Gradient ascent on the log-likelihood: Adam or plain steps."
    )
    learning_rate: float = Field(0.1, gt=0.0, le=100.0, description="Step size.")
    max_iterations: int = Field(
        200,
        ge=1,
        le=100_000,
        # `iterations` was this field's name until 2026-11-22; accepted until v2.
        validation_alias=AliasChoices("max_iterations", "iterations"),
        description="Most gradient steps (`iterations`, its old name, is still accepted).",
    )
    tolerance: float = Field(
        1e-3, gt=0.0, le=100.0, description="Stop when the feature-count gap's norm is below."
    )
    l2: float = Field(
        1.0,
        ge=0.0,
        le=100.0,
        description="Weight of a Gaussian prior on theta (L2 penalty l2/2 |theta|^2): keeps "
        "the weights of cells the data says little about near 0.",
    )
    checkpoint_interval: int = Field(
        50, ge=1, le=100_000, description="Gradient steps between checkpoints."
    )

    @model_validator(mode="after")
    def _dense_enough(self) -> MaxEntIRLConfig:
        # The max-ent passes work on dense P[s, a, s'] (8 S^2 A bytes: 32 MB at 1024 cells).
        if n_cells(self.env) > MAX_CELLS:
            raise ValueError(
                f"MaxEnt IRL works on grids of at most {MAX_CELLS} cells (e.g. 32x32), got "
                f"{n_cells(self.env)}"
            )
        return self


# -- features, demonstrations, metrics ---------------------------------------------------------
def state_features(mdp: TabularMDP, kind: str) -> np.ndarray:
    """F[s, k]: what the learned reward r = F theta can depend on."""
    if kind == "onehot":
        return np.eye(mdp.n_states)  # F[s, s]
    assert mdp.layout is not None  # grids of MaxEnt IRL's size keep their map
    cells = np.array([list(row) for row in mdp.layout]).reshape(-1)
    if kind == "terrain":
        return np.stack([np.isin(cells, ["S", "."]), cells == "G", cells == "H"], 1).astype(
            np.float64
        )  # F[s, 3]
    rows, cols = mdp.shape
    r = np.arange(mdp.n_states) // cols / max(rows - 1, 1)  # r[s] in [0, 1]
    c = np.arange(mdp.n_states) % cols / max(cols - 1, 1)  # c[s] in [0, 1]
    return np.stack([r, c, r * r, c * c, r * c], axis=1)  # F[s, 5]


def generate_demos(
    P: np.ndarray,
    policy: np.ndarray,
    starts: np.ndarray,
    n_demos: int,
    length: int,
    rng: np.random.Generator,
    interrupt: Interrupt = never,
) -> np.ndarray:
    """demos[i, t]: states of n_demos rollouts of a deterministic policy, from random starts;
    `interrupt` may stop it between two time steps."""
    n_states = P.shape[0]
    demos = np.zeros((n_demos, length), dtype=np.int64)
    demos[:, 0] = rng.choice(starts, size=n_demos)
    for t in range(1, length):
        interrupt()
        probs = P[demos[:, t - 1], policy[demos[:, t - 1]]]  # probs[i, s']
        u = rng.random(n_demos)[:, None]
        demos[:, t] = np.minimum((probs.cumsum(axis=1) < u).sum(axis=1), n_states - 1)
    return demos


def discounted_counts(D: np.ndarray, features: np.ndarray, discount: float) -> np.ndarray:
    """sum_t gamma^t sum_s D[t, s] F[s, k]: feature counts of visitation frequencies."""
    weights = discount ** np.arange(D.shape[0])  # w[t]
    return (weights @ D) @ features  # mu[k]


def demo_counts(
    demos: np.ndarray, features: np.ndarray, discount: float, interrupt: Interrupt = never
) -> np.ndarray:
    """mu_E[k] = mean_i sum_t gamma^t F[demos[i, t], k]: the demonstrations' discounted
    feature counts (f~ of Eq. 6), gathered a chunk of demonstrations at a time."""
    n_demos, length = demos.shape
    weights = discount ** np.arange(length)  # w[t]
    per_demo = np.empty((n_demos, features.shape[1]))  # mu[i, k]
    rows = max(1, COUNT_CHUNK // (length * features.shape[1]))
    for first in range(0, n_demos, rows):
        interrupt()
        chunk = features[demos[first : first + rows]]  # F[i, t, k]
        per_demo[first : first + rows] = (weights[None, :, None] * chunk).sum(axis=1)
    return per_demo.mean(axis=0)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; 0 when either side is constant (no linear relation to measure)."""
    x, y = x - x.mean(), y - y.mean()
    denominator = float(np.sqrt((x @ x) * (y @ y)))
    return float(x @ y / denominator) if denominator > 1e-12 else 0.0


def irl_dynamics(mdp: TabularMDP) -> np.ndarray:
    """P[s, a, s'] with goals and hazards absorbing: gridworld already builds them as
    self-loops, and nothing here treats them as terminal."""
    return mdp.P


def optimal_for(
    P: np.ndarray, reward: np.ndarray, discount: float, interrupt: Interrupt = never
) -> dp.VIResult:
    """Value iteration for a state reward r(s), received in s, on the absorbing MDP;
    `interrupt` may stop it between two sweeps."""
    R = np.repeat(reward[:, None], P.shape[1], axis=1)  # R[s, a] = r(s)
    return dp.value_iteration(
        P,
        R,
        discount,
        tolerance=VI_TOLERANCE,
        max_iterations=1_000_000,
        callback=lambda *_: interrupt(),
    )


def expected_value_ratio(
    mdp: TabularMDP, policy: np.ndarray, discount: float, v_star: float
) -> float:
    """Value of `policy` from the start under the true (task) reward, relative to V*(start):
    1 - (V*(S) - V^pi(S)) / |V*(S)|, which is V^pi(S) / V*(S) when V*(S) > 0."""
    v_pi = float(
        mdp.start @ dp.policy_evaluation(mdp.P, mdp.R, policy, discount, terminal=mdp.fixed)
    )
    return 1.0 - (v_star - v_pi) / max(abs(v_star), 1e-12)


@dataclass(frozen=True)
class Problem:
    """What the learner sees (dynamics, features, the demonstrations' feature counts and
    starts) and, for reports only, what it must not (the true reward, the expert)."""

    config: MaxEntIRLConfig
    mdp: TabularMDP  # the task, with its true reward
    P: np.ndarray  # P[s, a, s'], goals and hazards absorbing
    F: np.ndarray  # F[s, k]
    expert_counts: np.ndarray  # mu_E[k], discounted feature counts of the demonstrations
    start: np.ndarray  # p0[s], where the demonstrations start
    v_star: float  # the expert's value from S under the true reward

    def gradient(self, theta: np.ndarray, interrupt: Interrupt = never) -> np.ndarray:
        """grad[k] of the log-likelihood with the Gaussian prior: Eq. 6 minus l2 theta;
        `interrupt` may stop it between the backward and the forward pass."""
        horizon, discount = self.config.demo_length, self.config.discount
        reward = self.F @ theta  # r[s]
        _, _, pi = dp.soft_value_iteration(self.P, reward, horizon, discount)  # pi[t, s, a]
        interrupt()
        D = dp.state_visitation(self.P, pi, self.start, horizon)  # D[t, s]
        gap = self.expert_counts - discounted_counts(D, self.F, discount)  # Eq. 6
        return gap - self.config.l2 * theta

    def report(
        self, theta: np.ndarray, grad_norm: float, interrupt: Interrupt = never
    ) -> dict[str, float]:
        """How the reward fits, judged with the true reward (never used for learning)."""
        reward, entered = self.F @ theta, ~self.mdp.wall  # walls' rewards mean nothing
        policy = optimal_for(self.P, reward, self.config.discount, interrupt).policy
        value_ratio = expected_value_ratio(self.mdp, policy, self.config.discount, self.v_star)
        return {
            "irl/feature_gap": grad_norm,
            "irl/reward_correlation": pearson(reward[entered], self.mdp.state_reward[entered]),
            "irl/expected_value_ratio": value_ratio,
        }


def make_problem(
    config: MaxEntIRLConfig,
    mdp: TabularMDP,
    F: np.ndarray,
    rng: np.random.Generator,
    interrupt: Interrupt = never,
) -> Problem:
    """Demonstrations of the grid's expert drawn with `rng`, and what the learner sees of
    them; `interrupt` may stop this set-up (an expert's value iteration, thousands of
    demonstrations on a large grid) between two pieces of work."""
    P = irl_dynamics(mdp)  # P[s, a, s']
    # The expert: optimal for the true reward on the task MDP, rolled out on the absorbing one.
    expert = dp.value_iteration(
        mdp.P,
        mdp.R,
        config.discount,
        terminal=mdp.fixed,
        tolerance=VI_TOLERANCE,
        max_iterations=1_000_000,
        callback=lambda *_: interrupt(),
    )
    open_cells = np.flatnonzero(~mdp.fixed)
    starts = open_cells if config.random_starts else np.flatnonzero(mdp.start > 0)
    length = config.demo_length
    demos = generate_demos(P, expert.policy, starts, config.n_demos, length, rng, interrupt)
    return Problem(
        config=config,
        mdp=mdp,
        P=P,
        F=F,
        expert_counts=demo_counts(demos, F, config.discount, interrupt),
        start=np.bincount(demos[:, 0], minlength=mdp.n_states) / len(demos),
        v_star=float(mdp.start @ expert.V),
    )


class Ascent:
    """Gradient ascent on theta, in place: Adam (Kingma & Ba 2015, Algorithm 1, with its
    default betas) or plain steps of `learning_rate` times the gradient."""

    def __init__(self, n: int, *, method: str, learning_rate: float) -> None:
        self.method, self.learning_rate = method, learning_rate
        self.m, self.v = np.zeros(n), np.zeros(n)  # Adam's moments m[k], v[k]
        self.t = 0  # steps taken

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        self.t += 1
        if self.method != "adam":
            theta += self.learning_rate * grad
            return
        self.m *= beta1
        self.m += (1 - beta1) * grad
        self.v *= beta2
        self.v += (1 - beta2) * grad**2
        m_hat, v_hat = self.m / (1 - beta1**self.t), self.v / (1 - beta2**self.t)
        theta += self.learning_rate * m_hat / (np.sqrt(v_hat) + eps)

    def state_dict(self) -> dict[str, Any]:
        return {
            "m": torch.from_numpy(self.m.copy()),
            "v": torch.from_numpy(self.v.copy()),
            "t": self.t,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.m[:] = state["m"].double().numpy()
        self.v[:] = state["v"].double().numpy()
        self.t = int(state["t"])


# -- cost --------------------------------------------------------------------------------------
# Rewards' magnitude an estimate of value iteration's sweeps assumes: the grid's rewards are
# at most 1000 (`GridEnv`), and a learned reward is taken to be no larger.
REWARD_SCALE = 1e3


def n_features(config: MaxEntIRLConfig, n_states: int) -> int:
    """Columns of `state_features(mdp, config.features)`."""
    return {"onehot": n_states, "terrain": 3, "coordinates": 5}[config.features]


def cost(config: MaxEntIRLConfig, *, datasets: Mapping[str, Any] | None = None) -> Cost:
    """Estimated operations of a run (`ml.core.cost`), for S cells, A = 4 actions, K
    features, horizon H = demo_length and N = n_demos, a dense backup over P[s, a, s']
    costing 2 S A S:

    - a gradient (one iteration): the backward pass (soft value iteration, H - 1 backups
      with a log-sum-exp) and the forward pass (state visitation, H - 1 products with P),
      with the feature counts (2 S K);
    - a value-iteration solve (the expert's, and one per report: every LOG_INTERVAL
      iterations and at the end): at most `vi_sweeps` sweeps, the contraction's bound for
      this discount and rewards within REWARD_SCALE, plus the exact policy evaluation of a
      report (a linear solve, 2/3 S^3);
    - the set-up: the expert's solve, N demonstrations of H states (3 S per state drawn),
      and their feature counts (2 N H K).

    total = set-up + max_iterations x gradient + reports x solve. Per step, what sits
    between two stop checks (before each gradient and between its two passes, between two
    sweeps of a solve, between two demonstration steps): one gradient's backward and
    forward passes and a report's policy evaluation, counted together.
    """
    states, actions = n_cells(config.env), len(ACTION_NAMES)
    features = n_features(config, states)
    horizon, demos = config.demo_length, config.n_demos
    backup = 2 * states * actions * states + 8 * states * actions + CALL_OVERHEAD
    gradient = 2 * (horizon - 1) * backup + 2 * states * features + 2 * horizon * states
    sweeps = vi_sweeps(
        config.discount, tolerance=VI_TOLERANCE, reward_scale=REWARD_SCALE, cap=1_000_000
    )
    policy_evaluation = 2 / 3 * states**3 + 2 * states * actions * states
    solve = sweeps * backup + policy_evaluation
    rollouts = (horizon - 1) * (3 * demos * states + CALL_OVERHEAD)
    setup = solve + rollouts + 2 * demos * horizon * features
    reports = config.max_iterations // LOG_INTERVAL + 2
    return Cost(
        total=setup + config.max_iterations * gradient + reports * solve,
        per_step=gradient + policy_evaluation,
        total_fields=("max_iterations", "env.layout", "demo_length", "discount"),
        step_fields=("env.layout", "demo_length"),
    )


# -- training ----------------------------------------------------------------------------------
def train(
    config: MaxEntIRLConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
) -> MaxEntIRLModel:
    """Fit a linear state reward to expert demonstrations; NumPy on CPU (`device` unused).

    Every long computation lets a stop in (`Run.interrupt_if_asked`) at a point where theta
    and the optimiser are those of a step boundary, or where only reports are left, so a
    stopped run resumes exactly."""
    mdp = build_grid(config.env)
    F = state_features(mdp, config.features)  # F[s, k]
    theta = np.zeros(F.shape[1])  # theta[k], updated in place
    ascent = Ascent(len(theta), method=config.optimizer, learning_rate=config.learning_rate)
    run = Run(hooks, config, log_interval=LOG_INTERVAL)
    run.track(theta=theta, optimizer=ascent)
    # The latest gradient's norm, for the final report even when resumed at the end.
    run.values["feature_gap"] = float("inf")
    run.start(resume)
    interrupt = run.interrupt_if_asked
    # The same demonstrations on resume: they are drawn from the seed, not checkpointed.
    problem = make_problem(config, mdp, F, numpy_rng(seed), interrupt)
    while run.step < config.max_iterations:
        run.stop_if_asked()
        grad = problem.gradient(theta, interrupt)  # grad[k]
        grad_norm = run.values["feature_gap"] = float(np.linalg.norm(grad))
        if grad_norm < config.tolerance:
            break
        ascent.step(theta, grad)
        if run.advance() % LOG_INTERVAL == 0 and run.step < config.max_iterations:
            run.log(problem.report(theta, grad_norm, interrupt))
        run.end_step()

    # The result: the learned reward, and the values and policy that are optimal for it.
    reward = F @ theta  # r[s]
    solved = optimal_for(problem.P, reward, config.discount, interrupt)
    final = problem.report(theta, float(run.values["feature_gap"]), interrupt)
    run.finish(final)
    metadata = model_metadata(
        kind=MaxEntIRLModel.kind,
        algorithm="maxent_irl",
        config=config,
        seed=seed,
        shapes={**mdp_shapes(problem.mdp), "n_features": len(theta)},
        summary={
            "reward_correlation": final["irl/reward_correlation"],
            "expected_value_ratio": final["irl/expected_value_ratio"],
            "feature_gap": final["irl/feature_gap"],
            "iterations": run.step,
        },
        env=mdp_description(problem.mdp),
    )
    mdp = problem.mdp
    return MaxEntIRLModel(
        metadata, reward=reward, V=solved.V, Q=solved.Q, terminal=mdp.terminal, wall=mdp.wall
    )


# -- model -------------------------------------------------------------------------------------
class MaxEntIRLModel(TabularValueModel):
    """A learned state reward r[s] on a grid, with the values and Q-values optimal for it.

    V and Q are for the learned reward r(s), received in s at every step, on the grid with
    goals and hazards absorbing (so their values are not 0).
    """

    kind: ClassVar[str] = "maxent_irl"
    reward: np.ndarray  # r[s]

    def __init__(self, metadata: dict[str, Any], *, reward: np.ndarray, **tables: Any) -> None:
        super().__init__(metadata, **tables)
        self.reward = np.asarray(reward, dtype=np.float64)

    def state(self) -> dict[str, Any]:
        return {**super().state(), "reward": torch.from_numpy(self.reward.copy())}

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> MaxEntIRLModel:
        return cls(metadata, reward=state["reward"].double().numpy(), **table_arrays(state))


ALGORITHM = Algorithm(
    name="maxent_irl",
    family="irl",
    description="Maximum-entropy inverse RL (Ziebart et al. 2008): a state reward learned "
    "from optimal demonstrations on a grid world, and the policy optimal for it.",
    config=MaxEntIRLConfig,
    train=train,
    model=MaxEntIRLModel,
    queue="cpu",
    cost=cost,
)
