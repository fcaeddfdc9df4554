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
ascent (Adam by default) runs until the gradient's norm falls below `tolerance`.

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
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from ml.core.algorithm import Algorithm
from ml.core.errors import TrainingStopped
from ml.core.hooks import Hooks
from ml.core.model import TrainedModel
from ml.core.seeding import seed_everything
from ml.core.validation import grid_states
from ml.core.versions import library_versions
from ml.tabular import dp
from ml.tabular.gridworld import GridEnv, TabularMDP, build_grid
from ml.tabular.value_iteration import TabularValueModel, mdp_description, mdp_shapes

LOG_INTERVAL = 10  # gradient steps between metrics and progress reports
VI_TOLERANCE = 1e-8

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
    iterations: int = Field(200, ge=1, le=100_000, description="Most gradient steps.")
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


# -- features, demonstrations, metrics ---------------------------------------------------------
def state_features(mdp: TabularMDP, kind: str) -> np.ndarray:
    """F[s, k]: what the learned reward r = F theta can depend on."""
    if kind == "onehot":
        return np.eye(mdp.n_states)  # F[s, s]
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
) -> np.ndarray:
    """demos[i, t]: states of n_demos rollouts of a deterministic policy, from random starts."""
    n_states = P.shape[0]
    demos = np.zeros((n_demos, length), dtype=np.int64)
    demos[:, 0] = rng.choice(starts, size=n_demos)
    for t in range(1, length):
        probs = P[demos[:, t - 1], policy[demos[:, t - 1]]]  # probs[i, s']
        u = rng.random(n_demos)[:, None]
        demos[:, t] = np.minimum((probs.cumsum(axis=1) < u).sum(axis=1), n_states - 1)
    return demos


def discounted_counts(D: np.ndarray, features: np.ndarray, discount: float) -> np.ndarray:
    """sum_t gamma^t sum_s D[t, s] F[s, k]: feature counts of visitation frequencies."""
    weights = discount ** np.arange(D.shape[0])  # w[t]
    return (weights @ D) @ features  # mu[k]


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; 0 when either side is constant (no linear relation to measure)."""
    x, y = x - x.mean(), y - y.mean()
    denominator = float(np.sqrt((x @ x) * (y @ y)))
    return float(x @ y / denominator) if denominator > 1e-12 else 0.0


def irl_dynamics(mdp: TabularMDP) -> np.ndarray:
    """P[s, a, s'] with goals and hazards absorbing: gridworld already builds them as
    self-loops, and nothing here treats them as terminal."""
    return mdp.P


def optimal_for(P: np.ndarray, reward: np.ndarray, discount: float) -> dp.VIResult:
    """Value iteration for a state reward r(s), received in s, on the absorbing MDP."""
    R = np.repeat(reward[:, None], P.shape[1], axis=1)  # R[s, a] = r(s)
    return dp.value_iteration(P, R, discount, tolerance=VI_TOLERANCE, max_iterations=1_000_000)


def expected_value_ratio(
    mdp: TabularMDP, policy: np.ndarray, discount: float, v_star: float
) -> float:
    """Value of `policy` from the start under the true (task) reward, relative to V*(start):
    1 - (V*(S) - V^pi(S)) / |V*(S)|, which is V^pi(S) / V*(S) when V*(S) > 0."""
    v_pi = float(
        mdp.start @ dp.policy_evaluation(mdp.P, mdp.R, policy, discount, terminal=mdp.terminal)
    )
    return 1.0 - (v_star - v_pi) / max(abs(v_star), 1e-12)


# -- training ----------------------------------------------------------------------------------
def train(
    config: MaxEntIRLConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
) -> MaxEntIRLModel:
    """Fit a linear state reward to expert demonstrations; NumPy on CPU (`device` unused)."""
    rng = seed_everything(seed)
    mdp = build_grid(config.env)
    P = irl_dynamics(mdp)  # P[s, a, s']
    F = state_features(mdp, config.features)  # F[s, k]
    true_reward = mdp.state_reward  # r*(s): for reports only, never for learning
    entered = ~mdp.wall  # cells whose reward means something

    # The expert: optimal for the true reward on the task MDP, rolled out on the absorbing one.
    expert = dp.value_iteration(
        mdp.P,
        mdp.R,
        config.discount,
        terminal=mdp.terminal,
        tolerance=VI_TOLERANCE,
        max_iterations=1_000_000,
    )
    v_star = float(mdp.start @ expert.V)  # for reports only
    if resume is None:
        open_cells = np.flatnonzero(~mdp.terminal)
        starts = open_cells if config.random_starts else np.flatnonzero(mdp.start > 0)
        demos = generate_demos(
            P, expert.policy, starts, config.n_demos, config.demo_length, rng
        )  # demos[i, t]
        theta = np.zeros(F.shape[1])  # theta[k]
        m, v = np.zeros_like(theta), np.zeros_like(theta)  # Adam moments
        step = 0
    else:
        demos = resume["demos"].long().numpy()
        theta = resume["theta"].double().numpy().copy()
        m, v = resume["adam_m"].double().numpy().copy(), resume["adam_v"].double().numpy().copy()
        step = int(resume["step"])

    # What the learner knows of the demonstrations: their feature counts and where they start.
    horizon = config.demo_length
    weights = config.discount ** np.arange(horizon)  # w[t]
    expert_counts = (weights[None, :, None] * F[demos]).sum(axis=1).mean(axis=0)  # mu_E[k]
    start = np.bincount(demos[:, 0], minlength=mdp.n_states) / len(demos)  # p0[s]

    def gradient(theta: np.ndarray) -> np.ndarray:
        reward = F @ theta  # r[s]
        _, _, pi = dp.soft_value_iteration(P, reward, horizon, config.discount)  # pi[t, s, a]
        D = dp.state_visitation(P, pi, start, horizon)  # D[t, s]
        gap = expert_counts - discounted_counts(D, F, config.discount)  # Eq. 6
        return gap - config.l2 * theta  # minus the prior's gradient

    def checkpoint() -> dict[str, Any]:
        return {
            "step": step,
            "theta": torch.from_numpy(theta.copy()),
            "adam_m": torch.from_numpy(m.copy()),
            "adam_v": torch.from_numpy(v.copy()),
            "demos": torch.from_numpy(demos.copy()),
        }

    def report(grad_norm: float) -> dict[str, float]:
        reward = F @ theta
        policy = optimal_for(P, reward, config.discount).policy
        return {
            "irl/feature_gap": grad_norm,
            "irl/reward_correlation": pearson(reward[entered], true_reward[entered]),
            "irl/expected_value_ratio": expected_value_ratio(mdp, policy, config.discount, v_star),
        }

    beta1, beta2, eps = 0.9, 0.999, 1e-8
    hooks.on_progress(step, config.iterations)
    grad_norm = float("inf")
    while step < config.iterations:
        if hooks.should_stop():
            hooks.on_checkpoint(checkpoint())
            raise TrainingStopped(step)
        grad = gradient(theta)  # grad[k]
        grad_norm = float(np.linalg.norm(grad))
        if grad_norm < config.tolerance:
            break
        step += 1
        if config.optimizer == "adam":  # ascent: theta follows +grad
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * grad**2
            m_hat, v_hat = m / (1 - beta1**step), v / (1 - beta2**step)
            theta = theta + config.learning_rate * m_hat / (np.sqrt(v_hat) + eps)
        else:
            theta = theta + config.learning_rate * grad
        if step % LOG_INTERVAL == 0:
            hooks.on_metrics(step, report(grad_norm))
            hooks.on_progress(step, config.iterations)
        if step % config.checkpoint_interval == 0:
            hooks.on_checkpoint(checkpoint())

    # The result: the learned reward, and the values and policy that are optimal for it.
    reward = F @ theta  # r[s]
    solved = optimal_for(P, reward, config.discount)
    final = report(grad_norm if np.isfinite(grad_norm) else float(np.linalg.norm(gradient(theta))))
    hooks.on_metrics(step, final)
    hooks.on_progress(step, config.iterations)
    metadata = {
        "kind": MaxEntIRLModel.kind,
        "algorithm": "maxent_irl",
        "shapes": {**mdp_shapes(mdp), "n_features": int(F.shape[1])},
        "env": mdp_description(mdp),
        "config": config.model_dump(mode="json"),
        "seed": seed,
        "versions": library_versions(),
        "summary": {
            "reward_correlation": final["irl/reward_correlation"],
            "expected_value_ratio": final["irl/expected_value_ratio"],
            "feature_gap": final["irl/feature_gap"],
            "iterations": step,
        },
    }
    return MaxEntIRLModel(metadata, reward=reward, V=solved.V, Q=solved.Q)


# -- model -------------------------------------------------------------------------------------
class MaxEntIRLModel(TabularValueModel):
    """A learned state reward on a grid, with the values and Q-values optimal for it.

    `values()` and `q_values()` answer for the learned reward r(s), received in s at every
    step, on the grid with goals and hazards absorbing (so their values are not 0).
    """

    kind: ClassVar[str] = "maxent_irl"
    queries: ClassVar[tuple[str, ...]] = ("rewards", "values", "q-values")

    def __init__(
        self, metadata: dict[str, Any], *, reward: np.ndarray, V: np.ndarray, Q: np.ndarray
    ) -> None:
        super().__init__(metadata, V=V, Q=Q)
        self.reward = np.asarray(reward, dtype=np.float64)  # r[s]

    def rewards(self, states: list[Any] | None = None) -> dict[str, Any]:
        """Learned reward of the given states, or the whole table laid out on the grid."""
        if states is not None:
            index = grid_states(states, self.grid_shape)
            return {"rewards": self.reward[index].tolist()}
        return {
            "rewards": self.reward.tolist(),
            "grid": self._grid(self.reward),
            "shape": list(self.grid_shape),
            "layout": list(self.metadata["env"]["layout"]),
        }

    def state(self) -> dict[str, Any]:
        return {**super().state(), "reward": torch.from_numpy(self.reward.copy())}

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> TrainedModel:
        return cls(
            metadata,
            reward=state["reward"].double().numpy(),
            V=state["V"].double().numpy(),
            Q=state["Q"].double().numpy(),
        )


ALGORITHM = Algorithm(
    name="maxent_irl",
    family="irl",
    description="Maximum-entropy inverse RL (Ziebart et al. 2008): a state reward learned "
    "from optimal demonstrations on a grid world, and the policy optimal for it.",
    config=MaxEntIRLConfig,
    train=train,
    model=MaxEntIRLModel,
    queue="cpu",
)
