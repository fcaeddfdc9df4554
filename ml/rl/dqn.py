"""Deep Q-Networks (Mnih et al. 2015, "Human-level control through deep reinforcement learning").

A network Q(s, .; theta) estimates the return of each discrete action. It acts epsilon-greedily
and learns from uniformly replayed transitions (experience replay) by descending the Huber
loss between Q(s, a) and the one-step target

    y = r + gamma * (1 - terminated) * max_a' Q(s', a'; theta^-)                 (Methods)

where theta^- is a target network, a copy of theta refreshed every `target_update_interval`
environment steps (`tau` = 1), or pulled towards it by Polyak averaging (`tau` < 1). Clipping
the TD error through the Huber loss is the paper's "error clipping".

Five standard improvements are options:

- Double DQN (van Hasselt, Guez and Silver 2016, "Deep RL with Double Q-learning"): the online
  network picks a' and the target network evaluates it,
  y = r + gamma * (1 - terminated) * Q(s', argmax_a' Q(s', a'; theta); theta^-), which removes
  most of max's over-estimation bias.
- Dueling networks (Wang et al. 2016, "Dueling Network Architectures for Deep RL"): a shared
  body feeds a state value V(s) and advantages A(s, a), combined as
  Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a')   (Eq. 9).
- n-step returns (Sutton 1988; the multi-step targets of Rainbow, Hessel et al. 2018): the
  target sums n rewards before it bootstraps, y = R^(n) + gamma^n max_a' Q(s_{t+n}, a'),
  cut at an episode's end (`ml.rl.replay.NStepWriter`), which carries a reward back n
  states per update instead of one.
- Prioritized replay (Schaul et al. 2016, proportional): transitions with large TD errors
  are replayed more often, the bias corrected by importance-sampling weights
  (`ml.rl.prioritized`).
- Several environments stepped as one batch (`n_envs`, `ml.rl.vector.VectorEnv`): one
  forward pass picks the actions of all N. A step of the run is still one environment step
  (`total_steps`, every interval and the epsilon schedule count environment steps): the N
  transitions of a batch step are stored and counted one by one, so a round of gradient
  steps, a target update, an evaluation or a checkpoint falls exactly where it would with
  one environment.

Observations are vectors (the classic-control tasks, `network="mlp"`) or small images
(`ml.rl.pixels`, `network="conv"`: 3 x 3 convolutions then the same dense head, after the
convolutional Q-network of Mnih et al. 2015).

The defaults start from rl-baselines3-zoo's tuned CartPole-v1 DQN (Adam 2.3e-3, batch 64,
128 gradient steps every 256 environment steps, a target refreshed every 10 steps, epsilon
from 1 to 0.04 over the first 16% of the run) and change four things a sweep on CartPole-v1
chose (seeds 0-4, steps and seconds to a greedy return of 475, one CPU thread; see
bench/dqn_cartpole.py): 5-step returns, which cut the median steps to 475 from about
28,000 to 14,000 (n = 3 gave about 18,000, n = 8 no fewer than 5); a [64, 64] network
instead of [256, 256], which learns about as fast and makes a gradient step about 10 times
cheaper (0.4 ms instead of 4 ms: at 256 wide the step is compute-bound, at 64 it is
PyTorch's per-call overhead); 4 environments stepped together, about 12% less wall time
for the same steps; and Double DQN targets, a median of 12,000 steps instead of 14,000.
Prioritized replay made the evaluations climb more steadily but reached 475 later (a median
of 28,000 steps), so it stays off. Environments come
from `ml.rl.vector` (the discrete-action ones of `ml.rl.envs`, and `ml.rl.pixels`'s); greedy
evaluation (`ml.rl.vector.evaluate`, the same episodes as `ml.rl.envs.evaluate`) runs
every `eval_interval` steps, and with `keep_best` the returned network is the best-evaluated
one, as Stable-Baselines3's EvalCallback keeps its best model: DQN's greedy return on
CartPole swings widely between evaluations even after the task is solved.

Q-values far beyond any return the rewards seen so far allow (|Q| > 2 max|r| / (1 - gamma))
mean the bootstrapped targets are feeding on their own errors (the "deadly triad", van
Hasselt et al. 2018): the run warns "q_values_explode". Greedy returns that fall far below
the best the run reached, evaluation after evaluation, warn "returns_collapse" (the
catastrophic forgetting DQN is prone to once its buffer holds only good episodes); either
may end the run early with the best network so far (`stop_on`). A resumed run restarts the
environment (its state is not checkpointed), so it is not bit-identical to an uninterrupted
one; everything else, the replay buffer and the random generators included, is restored. A
stop asked for during a long round of gradient steps or an evaluation ends that step where
it is (`Run.interrupt_if_asked`), so it comes within a gradient step or an environment step,
not after the round; the resumed run goes on with the next step.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal, Protocol

import numpy as np
import torch
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from torch import nn
from torch.nn import functional as F

from ml.core.algorithm import Algorithm
from ml.core.cost import CALL_OVERHEAD, FORWARD, TRAIN, UPDATE_OVERHEAD, Cost, mlp_params
from ml.core.health import Suspicion
from ml.core.hooks import Hooks
from ml.core.metadata import model_metadata
from ml.core.nets import ACTIVATION_CHOICES, Activation, activation, mlp, polyak_update
from ml.core.optim import adam
from ml.core.schedules import linear
from ml.core.seeding import Stream, derived_seed, numpy_rng, resolve_device, seeded_torch
from ml.core.training import Interrupt, KeepBest, Run, never
from ml.explain.targets import Explained
from ml.rl import health
from ml.rl.models import DiscreteActionModel
from ml.rl.names import action_names, observation_names
from ml.rl.prioritized import PrioritizedReplayBuffer
from ml.rl.replay import Batch, NStepWriter, ReplayBuffer
from ml.rl.vector import DiscreteSpaces, DQNEnvId, VectorEnv, VectorStep, evaluate, spaces_of

LOG_INTERVAL = 250  # environment steps between progress reports and training metrics

Width = Annotated[int, Field(ge=1, le=4096)]
Channels = Annotated[int, Field(ge=1, le=256)]
HealthCode = Literal["q_values_explode", "returns_collapse"]


# -- config ------------------------------------------------------------------------------------
class DQNConfig(BaseModel):
    """Hyper-parameters of a DQN run; the defaults solve CartPole-v1 within 50,000 steps."""

    model_config = ConfigDict(extra="forbid")

    env: DQNEnvId = Field(
        "CartPole-v1",
        # `env_id` was this field's name until 2026-12-06; accepted until v2.
        validation_alias=AliasChoices("env", "env_id"),
        description="Gymnasium environment with discrete actions, by id: a classic-control "
        "task (vector observations) or PixelGridWorld-v0 (images, for network='conv'); "
        "`env_id`, its old name, is still accepted.",
    )
    total_steps: int = Field(
        50_000, ge=1, le=2_000_000, description="Environment steps to train for."
    )
    n_envs: int = Field(
        4,
        ge=1,
        le=64,
        description="Environments stepped together as one batch (one forward pass picks all "
        "their actions); total_steps and every interval still count environment steps.",
    )
    learning_rate: float = Field(2.3e-3, gt=0.0, le=1.0, description="Adam step size.")
    buffer_size: int = Field(
        100_000, ge=1, le=2_000_000, description="Replay buffer capacity, in transitions."
    )
    batch_size: int = Field(64, ge=1, le=4096, description="Transitions per gradient step.")
    gamma: float = Field(0.99, ge=0.0, le=1.0, description="Discount factor.")
    n_step: int = Field(
        5,
        ge=1,
        le=20,
        description="Rewards summed before the target bootstraps (n-step returns); 1 is "
        "the one-step target.",
    )
    prioritized_replay: bool = Field(
        False,
        description="Replay transitions in proportion to their TD error (Schaul et al. "
        "2016, proportional variant) instead of uniformly.",
    )
    priority_alpha: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Prioritized replay: how much priorities count (0 is uniform).",
    )
    priority_beta: float = Field(
        0.4,
        ge=0.0,
        le=1.0,
        description="Prioritized replay: importance-sampling exponent at the first step, "
        "annealed linearly to 1 at total_steps (1 corrects the sampling bias fully).",
    )
    priority_epsilon: float = Field(
        1e-6,
        gt=0.0,
        le=1.0,
        description="Prioritized replay: added to |TD error| so no transition's priority is 0.",
    )
    learning_starts: int = Field(
        1_000,
        ge=0,
        le=2_000_000,
        description="Environment steps of uniformly random actions before learning starts.",
    )
    train_frequency: int = Field(
        256, ge=1, le=100_000, description="Environment steps between rounds of gradient steps."
    )
    gradient_steps: int = Field(
        128, ge=1, le=10_000, description="Gradient steps per round of training."
    )
    target_update_interval: int = Field(
        10,
        ge=1,
        le=1_000_000,
        description="Environment steps between target-network updates.",
    )
    tau: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="Target update rate: 1 copies the online network (hard update), less "
        "moves the target that fraction of the way (Polyak averaging).",
    )
    exploration_fraction: float = Field(
        0.16,
        ge=0.0,
        le=1.0,
        description="Fraction of total_steps over which epsilon decays linearly.",
    )
    exploration_initial_eps: float = Field(
        1.0, ge=0.0, le=1.0, description="Epsilon at the first step."
    )
    exploration_final_eps: float = Field(
        0.04, ge=0.0, le=1.0, description="Epsilon after the decay."
    )
    network: Literal["mlp", "conv"] = Field(
        "mlp",
        description="Q-network body: 'mlp' for vector observations (images are flattened), "
        "'conv' (3 x 3 convolutions, then the dense `hidden` layers) for image observations.",
    )
    conv_channels: list[Channels] = Field(
        default_factory=lambda: [16, 32],
        min_length=1,
        max_length=4,
        description="network='conv': output channels of each 3 x 3 convolution.",
    )
    hidden: list[Width] = Field(
        default_factory=lambda: [64, 64],
        min_length=1,
        max_length=8,
        description="Hidden layer widths of the Q-network (its dense head with 'conv').",
    )
    activation: Activation = Field(
        "relu",
        description=f"Activation of the Q-network, after each convolution (network='conv') "
        f"and each hidden dense layer, the dueling streams' shared features included; the "
        f"Q-values themselves are linear: {ACTIVATION_CHOICES}.",
    )
    double_dqn: bool = Field(True, description="Double DQN targets (van Hasselt et al. 2016).")
    dueling: bool = Field(False, description="Dueling value/advantage heads (Wang et al. 2016).")
    max_grad_norm: float = Field(
        10.0, gt=0.0, le=1_000.0, description="Gradient norm clipping threshold."
    )
    eval_interval: int = Field(
        2_000, ge=1, le=2_000_000, description="Environment steps between greedy evaluations."
    )
    eval_episodes: int = Field(10, ge=1, le=100, description="Episodes per greedy evaluation.")
    keep_best: bool = Field(
        True,
        description="Return the best-evaluated network instead of the last one.",
    )
    target_return: float | None = Field(
        None,
        ge=-1e6,
        le=1e6,
        description="Stop as soon as the mean greedy evaluation return reaches this; "
        "null trains for total_steps.",
    )
    stop_on: list[HealthCode] = Field(
        default_factory=list,
        max_length=2,
        description="Health warnings that end training early instead of only being reported "
        "(q_values_explode, returns_collapse; see the job's warnings); the model then holds "
        "the best-evaluated network (with keep_best).",
    )
    checkpoint_interval: int = Field(
        10_000, ge=1, le=2_000_000, description="Environment steps between checkpoints."
    )

    @model_validator(mode="after")
    def _network_fits_observations(self) -> DQNConfig:
        if self.network == "conv" and not spaces_of(self.env).image:
            raise ValueError(
                f"network='conv' needs image observations; {self.env} has vectors "
                "(use network='mlp', or an image environment such as PixelGridWorld-v0)"
            )
        return self


# -- networks ----------------------------------------------------------------------------------
class QNetwork(nn.Module):
    """observation (obs_dim) -> Q-value per action (n_actions), plain or dueling."""

    def __init__(
        self,
        observation_dim: int,
        n_actions: int,
        hidden: list[int],
        activation: str,
        dueling: bool,
    ) -> None:
        super().__init__()
        self.n_actions = n_actions
        self.dueling = dueling
        self.value: nn.Linear | None = None
        self.advantage: nn.Linear | None = None
        if dueling:
            # Shared body ending in an activated feature layer, then the two streams.
            self.body = mlp(observation_dim, hidden[:-1], hidden[-1], activation, activation)
            self.value = nn.Linear(hidden[-1], 1)
            self.advantage = nn.Linear(hidden[-1], n_actions)
        else:
            self.body = mlp(observation_dim, hidden, n_actions, activation)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        if self.value is None or self.advantage is None:
            return self.body(observations)
        features = self.body(observations)
        advantages = self.advantage(features)  # A[b, a]
        # Eq. 9 of Wang et al.: subtracting the mean advantage makes V and A identifiable.
        return self.value(features) + advantages - advantages.mean(dim=1, keepdim=True)


class ConvQNetwork(nn.Module):
    """image [B, C, H, W] (or flat [B, C*H*W], as the replay buffer stores it) -> Q [B, A].

    The convolutional Q-network of Mnih et al. 2015 scaled down to images of a few pixels:
    3 x 3 "same" convolutions with the activation after each (no striding: every pixel is
    a cell of the world), flattened into `QNetwork`'s dense head, plain or dueling.
    """

    def __init__(
        self,
        observation_shape: tuple[int, int, int],
        n_actions: int,
        channels: list[int],
        hidden: list[int],
        activation_name: str,
        dueling: bool,
    ) -> None:
        super().__init__()
        self.observation_shape = observation_shape
        self.n_actions = n_actions
        layers: list[nn.Module] = []
        previous, height, width = observation_shape
        for out in channels:
            layers += [nn.Conv2d(previous, out, 3, padding=1), activation(activation_name)]
            previous = out
        self.torso = nn.Sequential(*layers, nn.Flatten())
        self.head = QNetwork(previous * height * width, n_actions, hidden, activation_name, dueling)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        images = observations.reshape(-1, *self.observation_shape)  # x[b, c, h, w]
        return self.head(self.torso(images))  # q[b, a]


def make_q_network(
    config: DQNConfig,
    observation_dim: int,
    n_actions: int,
    observation_shape: Sequence[int] | None = None,
) -> nn.Module:
    """The config's Q-network; `observation_shape` (C, H, W) is needed for network='conv'."""
    if config.network == "conv":
        if observation_shape is None or len(observation_shape) != 3:
            raise ValueError("network='conv' needs a (C, H, W) observation shape")
        c, h, w = (int(d) for d in observation_shape)
        return ConvQNetwork(
            (c, h, w), n_actions, config.conv_channels, config.hidden, config.activation,
            config.dueling,
        )  # fmt: skip
    return QNetwork(observation_dim, n_actions, config.hidden, config.activation, config.dueling)


def q_network_params(config: DQNConfig, observation_dim: int, n_actions: int) -> int:
    """Parameters of `make_q_network`'s MLP network, computed from the widths without
    building it."""
    if not config.dueling:
        return mlp_params([observation_dim, *config.hidden, n_actions])
    features = config.hidden[-1]
    return mlp_params([observation_dim, *config.hidden]) + (features + 1) * (n_actions + 1)


def q_network_weight_uses(config: DQNConfig, spaces: DiscreteSpaces) -> int:
    """Multiply-adds of one forward pass per example, divided by one: the parameter count
    for an MLP, where each weight is used once; a convolution's weights are used at every
    one of the H x W pixels."""
    if config.network == "mlp":
        return q_network_params(config, spaces.observation_dim, spaces.n_actions)
    c, h, w = spaces.observation_shape
    channels = [c, *config.conv_channels]
    convs = sum((9 * a + 1) * b for a, b in itertools.pairwise(channels)) * h * w
    return convs + q_network_params(config, channels[-1] * h * w, spaces.n_actions)


# -- cost --------------------------------------------------------------------------------------
def cost(config: DQNConfig, *, datasets: Mapping[str, Any] | None = None) -> Cost:
    """Estimated operations of a run (`ml.core.cost`), with p the Q-network's weight uses per
    example (its parameters for an MLP, `q_network_weight_uses`) and B = batch_size:

    - a gradient step: forward and backward on B transitions, and the target network's
      forward (the online one's too with double_dqn): B (6 + 2 [+ 2]) p, plus an optimiser
      step's overhead (and a sum-tree draw and update with prioritized replay);
      updates = (total_steps - learning_starts) / train_frequency x gradient_steps;
    - an environment step: the acting forward pass, 2 p, and the step's overhead; a target
      update every target_update_interval steps, 2 p;
    - an evaluation every eval_interval steps: eval_episodes episodes of at most the time
      limit, one batched forward pass per time step.

    Per step, what sits between two stop checks (each gradient step of a round is preceded
    by one, each evaluation time step too): a gradient step, a batch of n_envs environment
    steps, a target update and one evaluation time step.
    """
    spaces = spaces_of(config.env)
    p = q_network_weight_uses(config, spaces)
    batch, steps = config.batch_size, config.total_steps
    forwards = 2 if config.double_dqn else 1
    update = batch * (TRAIN + forwards * FORWARD) * p + UPDATE_OVERHEAD
    if config.prioritized_replay:
        update += 2 * CALL_OVERHEAD
    rounds = steps // config.train_frequency - min(steps, config.learning_starts) // (
        config.train_frequency
    )
    env_step = FORWARD * p + 2 * CALL_OVERHEAD
    target_update = FORWARD * p + CALL_OVERHEAD
    eval_time_step = config.eval_episodes * (FORWARD * p + CALL_OVERHEAD) + CALL_OVERHEAD
    evaluation = spaces.max_episode_steps * eval_time_step
    total = (
        rounds * config.gradient_steps * update
        + steps * env_step
        + steps // config.target_update_interval * target_update
        + (steps // config.eval_interval + 1) * evaluation
    )
    return Cost(
        total=total,
        per_step=update + config.n_envs * env_step + target_update + eval_time_step,
        total_fields=("total_steps", "gradient_steps", "batch_size", "hidden"),
        step_fields=("batch_size", "hidden", "n_envs"),
    )


# -- pieces of the loop --------------------------------------------------------------------------
def epsilon_at(step: int, config: DQNConfig) -> float:
    """Linear decay from the initial to the final epsilon over exploration_fraction of the run."""
    return linear(
        step,
        start=config.exploration_initial_eps,
        end=config.exploration_final_eps,
        duration=config.exploration_fraction * config.total_steps,
    )


def beta_at(step: int, config: DQNConfig) -> float:
    """Prioritized replay's importance-sampling exponent: priority_beta at step 0, linearly
    to 1 at the end of the run (Schaul et al. 2016, Section 3.4)."""
    return linear(step, start=config.priority_beta, end=1.0, duration=config.total_steps)


def epsilon_greedy(
    q_network: nn.Module,
    observations: np.ndarray,
    epsilon: float,
    rng: np.random.Generator,
    device: torch.device,
    n_actions: int,
) -> np.ndarray:
    """Actions [N] for observations [N, ...]: each uniformly random with probability epsilon,
    else argmax_a Q(s, a); one forward pass for all N, none while every action is random."""
    n = len(observations)
    if epsilon >= 1.0:  # no draw when it is certain
        return rng.integers(n_actions, size=n)
    explore = rng.random(n) < epsilon  # [N]
    random_actions = rng.integers(n_actions, size=n)  # [N]
    if explore.all():
        return random_actions
    with torch.no_grad():
        q = q_network(torch.as_tensor(observations, device=device))  # q[N, a]
    return np.where(explore, random_actions, q.argmax(dim=1).cpu().numpy())


def td_update(
    q_network: nn.Module,
    target_network: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    config: DQNConfig,
    weights: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One gradient step on the Huber loss between Q(s, a) and the (Double, n-step) DQN
    target, each transition's loss scaled by its importance-sampling weight [B] when given
    (prioritized replay); returns the metrics and the TD errors [B], still on the device."""
    with torch.no_grad():
        next_q = target_network(batch.next_observations)  # Q^-[b, a']
        if config.double_dqn:
            # The online network chooses a', the target network evaluates it.
            next_actions = q_network(batch.next_observations).argmax(dim=1, keepdim=True)
            next_value = next_q.gather(1, next_actions).squeeze(1)  # [b]
        else:
            next_value = next_q.max(dim=1).values  # [b]
        # gamma^h for a transition spanning h steps (n-step returns), gamma for one step.
        discount: float | torch.Tensor = config.gamma
        if config.n_step > 1 and batch.horizons is not None:
            discount = torch.pow(config.gamma, batch.horizons)  # [b]
        target = batch.rewards + discount * (1.0 - batch.terminated) * next_value  # y[b]
    q = q_network(batch.observations).gather(1, batch.actions.unsqueeze(1)).squeeze(1)  # [b]
    if weights is None:
        loss = F.smooth_l1_loss(q, target)
    else:
        loss = (weights * F.smooth_l1_loss(q, target, reduction="none")).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(q_network.parameters(), config.max_grad_norm)
    optimizer.step()
    q = q.detach()
    metrics = {"losses/td": loss.detach(), "rl/q_mean": q.mean(), "rl/q_max_abs": q.abs().max()}
    return metrics, q - target


def greedy_policy(q_network: nn.Module, device: torch.device) -> Any:
    """A batched argmax-Q policy for `evaluate`: obs [n, ...] -> actions [n]."""

    def act(observations: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            q = q_network(torch.as_tensor(observations, device=device))  # q[n, a]
        return q.argmax(dim=1).cpu().numpy()

    return act


def greedy_return(
    q_network: nn.Module, config: DQNConfig, seed: int, interrupt: Interrupt = never
) -> float:
    """Mean greedy return over `eval_episodes`, always on the same episodes; `interrupt`
    may stop it between two time steps."""
    device = next(q_network.parameters()).device
    q_network.eval()
    try:
        policy = greedy_policy(q_network, device)
        returns = evaluate(policy, config.env, config.eval_episodes, seed, interrupt)
    finally:
        q_network.train()
    return float(np.mean(returns))


# -- health ------------------------------------------------------------------------------------
class HasTimeLimit(Protocol):
    @property
    def max_episode_steps(self) -> int: ...


def q_values_explode(buffer: ReplayBuffer, gamma: float, spaces: HasTimeLimit) -> Suspicion:
    """`ml.rl.health.q_values_explode` on the Q-network's |Q| against the rewards `buffer`
    holds (with n-step returns they are n-step sums, which only loosens the bound), with
    advice for this algorithm."""
    return health.q_values_explode(
        health.largest_stored_reward(buffer),
        health.discount_horizon(gamma, spaces.max_episode_steps),
        remedy="a smaller learning_rate, a lower gamma or a slower target (a larger "
        "target_update_interval or a smaller tau)",
    )


def make_buffer(config: DQNConfig, spaces: DiscreteSpaces) -> ReplayBuffer:
    if not config.prioritized_replay:
        return ReplayBuffer(config.buffer_size, spaces.observation_dim)
    return PrioritizedReplayBuffer(
        config.buffer_size,
        spaces.observation_dim,
        alpha=config.priority_alpha,
        epsilon=config.priority_epsilon,
    )


def gradient_step(
    q_network: nn.Module,
    target_network: nn.Module,
    optimizer: torch.optim.Optimizer,
    buffer: ReplayBuffer,
    config: DQNConfig,
    step: int,
    rng: np.random.Generator,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """`td_update` on a batch drawn uniformly, or by priority (whose priorities then become
    the batch's new |TD errors|); returns its metrics."""
    if not isinstance(buffer, PrioritizedReplayBuffer):
        batch = buffer.sample(config.batch_size, rng, device)
        return td_update(q_network, target_network, optimizer, batch, config)[0]
    beta = beta_at(step, config)
    batch, weights, rows = buffer.sample_prioritized(config.batch_size, beta, rng, device)
    metrics, errors = td_update(q_network, target_network, optimizer, batch, config, weights)
    buffer.update_priorities(rows, errors.cpu().numpy())
    return metrics


def store(
    buffer: ReplayBuffer,
    writer: NStepWriter,
    observation: np.ndarray,
    action: int,
    out: VectorStep,
    i: int,
) -> None:
    """Hand environment i's step to its n-step writer, and what it completes to the buffer.
    The true s' even at a time-limit cut: the target still bootstraps from it."""
    done = writer.push(
        observation,
        action,
        float(out.rewards[i]),
        out.next_observations[i],
        bool(out.terminated[i]),
        bool(out.truncated[i]),
    )
    for t in done:  # the buffer stores observations flat (images too)
        observation, next_observation = t.observation.reshape(-1), t.next_observation.reshape(-1)
        buffer.add(observation, t.action, t.reward, next_observation, t.terminated, t.horizon)


def model_shapes(config: DQNConfig, spaces: DiscreteSpaces) -> dict[str, Any]:
    """What the model's metadata says of its inputs and outputs."""
    shapes: dict[str, Any] = {
        "observation_dim": spaces.observation_dim,
        "n_actions": spaces.n_actions,
        "env_id": config.env,
    }
    if spaces.image:
        shapes["observation_shape"] = list(spaces.observation_shape)
    return shapes


def run_summary(config: DQNConfig, run: Run, evaluations: KeepBest) -> dict[str, Any]:
    """The model's summary of its run: steps, episodes, evaluations, how it ended."""
    summary: dict[str, Any] = {
        "steps": run.step,
        "episodes": run.values["episodes"],
        **evaluations.summary(),
        "eval_episodes": config.eval_episodes,
        "returned": "best" if config.keep_best else "final",
        "stopped_early": run.step < config.total_steps,
    }
    if run.ended_early is not None:
        summary["ended_on"] = {"step": run.ended_early.step, "code": run.ended_early.code}
    return summary


# -- training ----------------------------------------------------------------------------------
def train(
    config: DQNConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
) -> DQNModel:
    """DQN (Algorithm 1 of Mnih et al. 2015, with Adam); returns the Q-network as a model."""
    dev = resolve_device(device)
    spaces = spaces_of(config.env)
    with seeded_torch(seed):
        q_network = make_q_network(
            config, spaces.observation_dim, spaces.n_actions, spaces.observation_shape
        ).to(dev)
    target_network = copy.deepcopy(q_network)
    optimizer = adam(q_network.parameters(), lr=config.learning_rate, device=dev)
    buffer = make_buffer(config, spaces)
    rng = numpy_rng(seed)  # exploration and minibatches
    evaluations = KeepBest()
    returns = health.ReturnRange()

    suspicions = [
        q_values_explode(buffer, config.gamma, spaces),
        health.returns_collapse(
            returns,
            remedy="the Q-network has forgotten its policy; the model holds the best-evaluated "
            "network (keep_best); try a smaller learning_rate, a larger buffer_size, a slower "
            "target, or target_return to stop once the task is solved",
        ),
    ]
    run = Run(
        hooks, config, log_interval=LOG_INTERVAL, suspicions=suspicions, stop_on=config.stop_on
    )
    run.track(
        q_network=q_network,
        target_network=target_network,
        optimizer=optimizer,
        buffer=buffer,
        rng=rng,
        evaluations=evaluations,
    )
    run.values["episodes"] = 0
    run.values["returns"] = returns.state_dict()  # in `values`: older checkpoints lack it
    run.start(resume)
    returns.load_state_dict(run.values["returns"])

    def evaluation() -> float:
        """Greedy evaluation of this step's network, offered to `evaluations`."""
        eval_seed = derived_seed(seed, Stream.EVAL)
        mean = greedy_return(q_network, config, eval_seed, run.interrupt_if_asked)
        evaluations.offer(run.step, mean, q_network)
        returns.offer(mean)
        run.values["returns"] = returns.state_dict()
        run.report({"eval/return": mean})
        return mean

    def after_env_step() -> bool:
        """Count one environment step and do what falls due at it; true when the run ends."""
        step = run.advance()
        if step > config.learning_starts and step % config.train_frequency == 0:
            for _ in range(config.gradient_steps):
                run.interrupt_if_asked()  # a stop inside a long round ends it early
                run.metrics.add_all(
                    gradient_step(
                        q_network, target_network, optimizer, buffer, config, run.step, rng, dev
                    )
                )
        if step % config.target_update_interval == 0:
            polyak_update(target_network, q_network, config.tau)
        run.metrics.set("charts/epsilon", epsilon_at(step, config))
        if run.due(config.eval_interval):
            mean = evaluation()
            if config.target_return is not None and mean >= config.target_return:
                return True
        run.end_step()
        return step >= config.total_steps or run.ended_early is not None

    # The episodes in progress at a checkpoint are not saved: a resumed run starts new ones.
    envs = VectorEnv(config.env, config.n_envs)
    writers = [NStepWriter(config.n_step, config.gamma) for _ in range(config.n_envs)]
    observations = envs.reset(derived_seed(seed, Stream.ENV, run.step))  # obs[N, ...]
    episode_returns = np.zeros(config.n_envs)  # [N]
    ended = run.step >= config.total_steps
    while not ended:
        # Act: uniformly at random while the buffer fills, then epsilon-greedily.
        epsilon = 1.0 if run.step < config.learning_starts else epsilon_at(run.step, config)
        actions = epsilon_greedy(q_network, observations, epsilon, rng, dev, spaces.n_actions)
        out = envs.step(actions)
        # Store and count the N transitions one by one (see the module docstring).
        for i in range(config.n_envs):
            run.stop_if_asked()  # before every environment step: a stop never waits a batch
            store(buffer, writers[i], observations[i], int(actions[i]), out, i)
            episode_returns[i] += out.rewards[i]
            if out.terminated[i] or out.truncated[i]:
                run.values["episodes"] += 1
                run.metrics.add("charts/episodic_return", float(episode_returns[i]))
                episode_returns[i] = 0.0
            ended = after_env_step()
            if ended:
                break
        observations = out.observations
    envs.close()
    if evaluations.last_step != run.step:  # resumed from a stop inside the last step
        evaluation()
    run.finish()

    if config.keep_best:
        evaluations.restore(q_network)
    kept_step = evaluations.step if config.keep_best else run.step
    health.warn_if_ended_early(run, hooks, config.total_steps, kept_step, "network")
    metadata = model_metadata(
        kind=DQNModel.kind,
        algorithm="dqn",
        config=config,
        seed=seed,
        shapes=model_shapes(config, spaces),
        summary=run_summary(config, run, evaluations),
    )
    return DQNModel(metadata, q_network.cpu().eval())


# -- model -------------------------------------------------------------------------------------
class DQNModel(DiscreteActionModel):
    """A trained Q-network: Q-values of observations, and its greedy policy's returns."""

    kind: ClassVar[str] = "dqn"
    q_network: nn.Module  # observations [B, observation_dim] -> Q-values [B, n_actions]

    def __init__(self, metadata: dict[str, Any], q_network: nn.Module) -> None:
        super().__init__(metadata)
        self.q_network = q_network

    def state(self) -> dict[str, Any]:
        return {"q_net": self.q_network.state_dict()}

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> DQNModel:
        config = DQNConfig.model_validate(metadata["config"])
        shapes = metadata["shapes"]
        q_network = make_q_network(
            config,
            int(shapes["observation_dim"]),
            int(shapes["n_actions"]),
            shapes.get("observation_shape"),
        )
        q_network.load_state_dict(state["q_net"])
        return cls(metadata, q_network.eval())

    def q_function(self, observations: np.ndarray) -> np.ndarray:
        """Q(s, a) [B, n_actions] for observations [B, observation_dim] (float32; images
        [B, C, H, W] may also come flat)."""
        x = torch.as_tensor(np.asarray(observations, dtype=np.float32))
        with torch.no_grad():
            return self.q_network(x.reshape(-1, self.observation_dim)).numpy()

    def explained(self) -> Explained:
        """The Q-network as explanations see it: observations (images [C, H, W] for the
        convolutional network) -> Q-value per action."""
        shape = self.shapes.get("observation_shape") or [self.observation_dim]
        return Explained(
            forward=self.q_network,
            root=self.q_network,
            input_shape=tuple(int(d) for d in shape),
            input_field="observations",
            outputs=action_names(self.env_id, self.n_actions),
            output_label="Q-value",
            input_names=observation_names(self.env_id, self.observation_dim),
        )

    def evaluate_policy(self, episodes: int, seed: int) -> list[float]:
        """Undiscounted returns of the greedy policy in `episodes` fresh episodes, episode i
        from `reset(seed=seed + i)` (`ml.rl.vector.evaluate`)."""
        policy = greedy_policy(self.q_network, torch.device("cpu"))
        return evaluate(policy, self.env_id, episodes, seed)


ALGORITHM = Algorithm(
    name="dqn",
    family="rl",
    description="Deep Q-Network (Mnih et al. 2015) with experience replay, a target network "
    "and the Huber loss; Double DQN, dueling heads, n-step returns, prioritized replay, "
    "batched environments and a convolutional network for image observations as options; "
    "classic-control Gymnasium environments and a pixel grid world.",
    config=DQNConfig,
    train=train,
    model=DQNModel,
    queue="gpu",
    cost=cost,
    exact_resume=False,  # the environment's episode in progress is not checkpointed
)
