"""Deep Q-Networks (Mnih et al. 2015, "Human-level control through deep reinforcement learning").

A network Q(s, .; theta) estimates the return of each discrete action. It acts epsilon-greedily
and learns from uniformly replayed transitions (experience replay) by descending the Huber
loss between Q(s, a) and the one-step target

    y = r + gamma * (1 - terminated) * max_a' Q(s', a'; theta^-)                 (Methods)

where theta^- is a target network, a copy of theta refreshed every `target_update_interval`
environment steps (`tau` = 1), or pulled towards it by Polyak averaging (`tau` < 1). Clipping
the TD error through the Huber loss is the paper's "error clipping".

Two standard improvements are options:

- Double DQN (van Hasselt, Guez and Silver 2016, "Deep RL with Double Q-learning"): the online
  network picks a' and the target network evaluates it,
  y = r + gamma * (1 - terminated) * Q(s', argmax_a' Q(s', a'; theta); theta^-), which removes
  most of max's over-estimation bias.
- Dueling networks (Wang et al. 2016, "Dueling Network Architectures for Deep RL"): a shared
  body feeds a state value V(s) and advantages A(s, a), combined as
  Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a')   (Eq. 9).

The defaults follow rl-baselines3-zoo's tuned CartPole-v1 DQN (Adam 2.3e-3, batch 64,
128 gradient steps every 256 environment steps, a target refreshed every 10 steps, epsilon
from 1 to 0.04 over the first 16% of the run, a [256, 256] ReLU network). Environments come
from `ml.rl.envs` (the discrete-action ones); greedy evaluation (`ml.rl.envs.evaluate`) runs
every `eval_interval` steps, and with `keep_best` the returned network is the best-evaluated
one, as Stable-Baselines3's EvalCallback keeps its best model: DQN's greedy return on
CartPole swings widely between evaluations even after the task is solved.

Q-values far beyond any return the rewards seen so far allow (|Q| > 2 max|r| / (1 - gamma))
mean the bootstrapped targets are feeding on their own errors (the "deadly triad", van
Hasselt et al. 2018): the run warns "q_values_explode". A resumed run restarts the
environment (its state is not checkpointed), so it is not bit-identical to an uninterrupted
one; everything else, the replay buffer and the random generators included, is restored. A
stop asked for during a long round of gradient steps or an evaluation ends that step where
it is (`Run.interrupt_if_asked`), so it comes within a gradient step or an environment step,
not after the round; the resumed run goes on with the next step.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
import torch
from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F

from ml.core.algorithm import Algorithm
from ml.core.cost import CALL_OVERHEAD, FORWARD, TRAIN, UPDATE_OVERHEAD, Cost, mlp_params
from ml.core.health import Suspicion
from ml.core.hooks import Hooks
from ml.core.metadata import model_metadata
from ml.core.model import TrainedModel
from ml.core.nets import Activation, mlp, polyak_update
from ml.core.optim import adam
from ml.core.schedules import linear
from ml.core.seeding import Stream, derived_seed, numpy_rng, resolve_device, seeded_torch
from ml.core.training import Interrupt, KeepBest, Run, never
from ml.rl.envs import DiscreteEnvId, EnvSpaces, env_spaces, evaluate, make_env
from ml.rl.replay import Batch, ReplayBuffer

LOG_INTERVAL = 250  # environment steps between progress reports and training metrics

Width = Annotated[int, Field(ge=1, le=4096)]


# -- config ------------------------------------------------------------------------------------
class DQNConfig(BaseModel):
    """Hyper-parameters of a DQN run; the defaults solve CartPole-v1 within 50,000 steps."""

    model_config = ConfigDict(extra="forbid")

    env: DiscreteEnvId = Field(
        "CartPole-v1",
        # `env_id` was this field's name until 2026-12-06; accepted until v2.
        validation_alias=AliasChoices("env", "env_id"),
        description="Gymnasium environment with discrete actions, by id (`env_id`, its old "
        "name, is still accepted).",
    )
    total_steps: int = Field(
        50_000, ge=1, le=2_000_000, description="Environment steps to train for."
    )
    learning_rate: float = Field(2.3e-3, gt=0.0, le=1.0, description="Adam step size.")
    buffer_size: int = Field(
        100_000, ge=1, le=2_000_000, description="Replay buffer capacity, in transitions."
    )
    batch_size: int = Field(64, ge=1, le=4096, description="Transitions per gradient step.")
    gamma: float = Field(0.99, ge=0.0, le=1.0, description="Discount factor.")
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
    hidden: list[Width] = Field(
        default_factory=lambda: [256, 256],
        min_length=1,
        max_length=8,
        description="Hidden layer widths of the Q-network.",
    )
    activation: Activation = Field("relu", description="Hidden-layer activation.")
    double_dqn: bool = Field(False, description="Double DQN targets (van Hasselt et al. 2016).")
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
    checkpoint_interval: int = Field(
        10_000, ge=1, le=2_000_000, description="Environment steps between checkpoints."
    )


# -- network -----------------------------------------------------------------------------------
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


def make_q_network(config: DQNConfig, observation_dim: int, n_actions: int) -> QNetwork:
    return QNetwork(observation_dim, n_actions, config.hidden, config.activation, config.dueling)


def q_network_params(config: DQNConfig, observation_dim: int, n_actions: int) -> int:
    """Parameters of `make_q_network`'s network, computed from the widths without building it."""
    if not config.dueling:
        return mlp_params([observation_dim, *config.hidden, n_actions])
    features = config.hidden[-1]
    return mlp_params([observation_dim, *config.hidden]) + (features + 1) * (n_actions + 1)


# -- cost --------------------------------------------------------------------------------------
_spaces = functools.cache(env_spaces)  # the spaces of an environment never change


def cost(config: DQNConfig, *, datasets: Mapping[str, Any] | None = None) -> Cost:
    """Estimated operations of a run (`ml.core.cost`), with p the Q-network's parameters
    and B = batch_size:

    - a gradient step: forward and backward on B transitions, and the target network's
      forward (the online one's too with double_dqn): B (6 + 2 [+ 2]) p, plus an optimiser
      step's overhead; updates = (total_steps - learning_starts) / train_frequency x
      gradient_steps;
    - an environment step: the acting forward pass, 2 p, and the step's overhead; a target
      update every target_update_interval steps, 2 p;
    - an evaluation every eval_interval steps: eval_episodes episodes of at most the time
      limit, one batched forward pass per time step.

    Per step, what sits between two stop checks (each gradient step of a round is preceded
    by one, each evaluation time step too): a gradient step, an environment step, a target
    update and one evaluation time step.
    """
    spaces = _spaces(config.env)
    p = q_network_params(config, spaces.observation_dim, spaces.n_actions)
    batch, steps = config.batch_size, config.total_steps
    forwards = 2 if config.double_dqn else 1
    update = batch * (TRAIN + forwards * FORWARD) * p + UPDATE_OVERHEAD
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
        per_step=update + env_step + target_update + eval_time_step,
        total_fields=("total_steps", "gradient_steps", "batch_size", "hidden"),
        step_fields=("batch_size", "hidden"),
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


def epsilon_greedy(
    q_network: QNetwork,
    observation: np.ndarray,
    epsilon: float,
    rng: np.random.Generator,
    device: torch.device,
) -> int:
    """A uniformly random action with probability epsilon, else argmax_a Q(s, a)."""
    if epsilon >= 1.0 or rng.random() < epsilon:  # no draw when it is certain
        return int(rng.integers(q_network.n_actions))
    with torch.no_grad():
        q = q_network(torch.as_tensor(observation, device=device).unsqueeze(0))  # q[1, a]
    return int(q.argmax(dim=1).item())


def td_update(
    q_network: QNetwork,
    target_network: QNetwork,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    config: DQNConfig,
) -> dict[str, torch.Tensor]:
    """One gradient step on the Huber loss between Q(s, a) and the (Double) DQN target;
    returns its metrics, still on the device."""
    with torch.no_grad():
        next_q = target_network(batch.next_observations)  # Q^-[b, a']
        if config.double_dqn:
            # The online network chooses a', the target network evaluates it.
            next_actions = q_network(batch.next_observations).argmax(dim=1, keepdim=True)
            next_value = next_q.gather(1, next_actions).squeeze(1)  # [b]
        else:
            next_value = next_q.max(dim=1).values  # [b]
        target = batch.rewards + config.gamma * (1.0 - batch.terminated) * next_value  # y[b]
    q = q_network(batch.observations).gather(1, batch.actions.unsqueeze(1)).squeeze(1)  # [b]
    loss = F.smooth_l1_loss(q, target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(q_network.parameters(), config.max_grad_norm)
    optimizer.step()
    q = q.detach()
    return {"losses/td": loss.detach(), "rl/q_mean": q.mean(), "rl/q_max_abs": q.abs().max()}


def greedy_policy(q_network: nn.Module, device: torch.device) -> Any:
    """A batched argmax-Q policy for `ml.rl.envs.evaluate`: obs [n, obs_dim] -> actions [n]."""

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


def q_values_explode(buffer: ReplayBuffer, gamma: float, spaces: EnvSpaces) -> Suspicion:
    """Warn when |Q| exceeds twice the largest discounted return the stored rewards allow:
    max|r| / (1 - gamma), or max|r| times the time limit when gamma is 1. The TD targets
    are built from those rewards only, so a sound Q-network stays within that bound."""
    horizon = 1.0 / (1.0 - gamma) if gamma < 1.0 else float(spaces.max_episode_steps)

    def explodes(q_max_abs: float) -> bool:
        n = len(buffer)
        largest_reward = float(buffer.rewards[:n].abs().max()) if n else 0.0
        return q_max_abs > 2.0 * max(largest_reward * horizon, 1.0)

    return Suspicion(
        code="q_values_explode",
        message="Q-values exceed twice the largest return the rewards allow: the Q-network is "
        "diverging; try a smaller learning_rate, a lower gamma or a slower target (a larger "
        "target_update_interval or a smaller tau)",
        metric="rl/q_max_abs",
        test=explodes,
    )


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
    spaces = env_spaces(config.env)
    env = make_env(config.env)
    with seeded_torch(seed):
        q_network = make_q_network(config, spaces.observation_dim, spaces.n_actions).to(dev)
    target_network = copy.deepcopy(q_network)
    optimizer = adam(q_network.parameters(), lr=config.learning_rate, device=dev)
    buffer = ReplayBuffer.for_env(config.buffer_size, spaces)
    rng = numpy_rng(seed)  # exploration and minibatches
    evaluations = KeepBest()

    explode = q_values_explode(buffer, config.gamma, spaces)
    run = Run(hooks, config, log_interval=LOG_INTERVAL, suspicions=[explode])
    run.track(
        q_network=q_network,
        target_network=target_network,
        optimizer=optimizer,
        buffer=buffer,
        rng=rng,
        evaluations=evaluations,
    )
    run.values["episodes"] = 0
    run.start(resume)

    def evaluation() -> float:
        """Greedy evaluation of this step's network, offered to `evaluations`."""
        eval_seed = derived_seed(seed, Stream.EVAL)
        mean = greedy_return(q_network, config, eval_seed, run.interrupt_if_asked)
        evaluations.offer(run.step, mean, q_network)
        run.report({"eval/return": mean})
        return mean

    # The episode in progress at a checkpoint is not saved: a resumed run starts a new one.
    observation, _ = env.reset(seed=derived_seed(seed, Stream.ENV, run.step))
    episode_return = 0.0
    while run.step < config.total_steps:
        run.stop_if_asked()
        # Act: uniformly at random while the buffer fills, then epsilon-greedily.
        epsilon = 1.0 if run.step < config.learning_starts else epsilon_at(run.step, config)
        action = epsilon_greedy(q_network, observation, epsilon, rng, dev)
        next_observation, reward, terminated, truncated, _ = env.step(action)
        # Store the true s' even at a time-limit cut: the target still bootstraps from it.
        buffer.add(observation, action, float(reward), next_observation, bool(terminated))
        observation, episode_return = next_observation, episode_return + float(reward)
        if terminated or truncated:
            run.values["episodes"] += 1
            run.metrics.add("charts/episodic_return", episode_return)
            observation, episode_return = env.reset()[0], 0.0
        step = run.advance()

        # Learn: a round of gradient steps every train_frequency steps. A stop inside a long
        # round ends it early: a resumed run goes on with the next step.
        if step > config.learning_starts and step % config.train_frequency == 0:
            for _ in range(config.gradient_steps):
                run.interrupt_if_asked()
                batch = buffer.sample(config.batch_size, rng, dev)
                run.metrics.add_all(td_update(q_network, target_network, optimizer, batch, config))
        if step % config.target_update_interval == 0:
            polyak_update(target_network, q_network, config.tau)
        run.metrics.set("charts/epsilon", epsilon_at(step, config))

        if run.due(config.eval_interval):
            mean = evaluation()
            if config.target_return is not None and mean >= config.target_return:
                break
        run.end_step()
    env.close()
    if evaluations.last_step != run.step:  # resumed from a stop inside the last step
        evaluation()
    run.finish()

    if config.keep_best:
        evaluations.restore(q_network)
    metadata = model_metadata(
        kind=DQNModel.kind,
        algorithm="dqn",
        config=config,
        seed=seed,
        shapes={
            "observation_dim": spaces.observation_dim,
            "n_actions": spaces.n_actions,
            "env_id": config.env,
        },
        summary={
            "steps": run.step,
            "episodes": run.values["episodes"],
            **evaluations.summary(),
            "eval_episodes": config.eval_episodes,
            "returned": "best" if config.keep_best else "final",
            "stopped_early": run.step < config.total_steps,
        },
    )
    return DQNModel(metadata, q_network.cpu().eval())


# -- model -------------------------------------------------------------------------------------
class DQNModel(TrainedModel):
    """A trained Q-network: Q-values of observations, and its greedy policy's returns."""

    kind: ClassVar[str] = "dqn"
    q_network: nn.Module  # observations [B, observation_dim] -> Q-values [B, n_actions]

    def __init__(self, metadata: dict[str, Any], q_network: nn.Module) -> None:
        super().__init__(metadata)
        self.q_network = q_network

    @property
    def observation_dim(self) -> int:
        return int(self.metadata["shapes"]["observation_dim"])

    @property
    def n_actions(self) -> int:
        return int(self.metadata["shapes"]["n_actions"])

    @property
    def env_id(self) -> str:
        return str(self.metadata["shapes"]["env_id"])

    def state(self) -> dict[str, Any]:
        return {"q_net": self.q_network.state_dict()}

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> DQNModel:
        config = DQNConfig.model_validate(metadata["config"])
        shapes = metadata["shapes"]
        q_network = make_q_network(config, int(shapes["observation_dim"]), int(shapes["n_actions"]))
        q_network.load_state_dict(state["q_net"])
        return cls(metadata, q_network.eval())

    def q_function(self, observations: np.ndarray) -> np.ndarray:
        """Q(s, a) [B, n_actions] for observations [B, observation_dim] (float32)."""
        x = torch.as_tensor(np.asarray(observations, dtype=np.float32))
        with torch.no_grad():
            return self.q_network(x.reshape(-1, self.observation_dim)).numpy()

    def evaluate_policy(self, episodes: int, seed: int) -> list[float]:
        """Undiscounted returns of the greedy policy in `episodes` fresh episodes, episode i
        from `reset(seed=seed + i)` (`ml.rl.envs.evaluate`)."""
        policy = greedy_policy(self.q_network, torch.device("cpu"))
        return evaluate(policy, self.env_id, episodes, seed)


ALGORITHM = Algorithm(
    name="dqn",
    family="rl",
    description="Deep Q-Network (Mnih et al. 2015) with experience replay, a target network "
    "and the Huber loss; Double DQN and dueling heads as options; classic-control Gymnasium "
    "environments.",
    config=DQNConfig,
    train=train,
    model=DQNModel,
    queue="gpu",
    cost=cost,
    exact_resume=False,  # the environment's episode in progress is not checkpointed
)
