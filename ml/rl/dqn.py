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
from `ml.rl.envs`; greedy evaluation (`ml.rl.envs.evaluate`) runs every `eval_interval` steps, and
with `keep_best` the returned network is the best-evaluated one, as Stable-Baselines3's
EvalCallback keeps its best model: DQN's greedy return on CartPole swings widely between
evaluations even after the task is solved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F

from ml.core.algorithm import Algorithm
from ml.core.errors import ConfigError, QueryError, TrainingStopped
from ml.core.hooks import Hooks
from ml.core.model import TrainedModel
from ml.core.nets import Activation, mlp
from ml.core.seeding import resolve_device, seed_everything
from ml.core.validation import observation_batch
from ml.core.versions import library_versions
from ml.rl.envs import EnvId, env_spaces, evaluate, make_env
from ml.rl.replay import Batch, ReplayBuffer

LOG_INTERVAL = 250  # environment steps between progress reports and training metrics

# Independent seed streams derived from the job's seed (see `derived_seed`).
ENV_STREAM = 0
EVAL_STREAM = 1

Width = Annotated[int, Field(ge=1, le=4096)]


# -- config ------------------------------------------------------------------------------------
class DQNConfig(BaseModel):
    """Hyper-parameters of a DQN run; the defaults solve CartPole-v1 within 50,000 steps."""

    model_config = ConfigDict(extra="forbid")

    env_id: EnvId = Field("CartPole-v1", description="Gymnasium classic-control environment.")
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


# -- pieces of the loop --------------------------------------------------------------------------
def epsilon_at(step: int, config: DQNConfig) -> float:
    """Linear decay from the initial to the final epsilon over exploration_fraction of the run."""
    decay_steps = config.exploration_fraction * config.total_steps
    progress = 1.0 if decay_steps <= 0 else min(1.0, step / decay_steps)
    start, end = config.exploration_initial_eps, config.exploration_final_eps
    return start + progress * (end - start)


def td_update(
    q_net: QNetwork,
    target_net: QNetwork,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    config: DQNConfig,
) -> torch.Tensor:
    """One gradient step on the Huber loss between Q(s, a) and the (Double) DQN target."""
    with torch.no_grad():
        next_q = target_net(batch.next_observations)  # Q^-[b, a']
        if config.double_dqn:
            # The online network chooses a', the target network evaluates it.
            next_actions = q_net(batch.next_observations).argmax(dim=1, keepdim=True)
            next_value = next_q.gather(1, next_actions).squeeze(1)
        else:
            next_value = next_q.max(dim=1).values
        target = batch.rewards + config.gamma * (1.0 - batch.terminated) * next_value
    q = q_net(batch.observations).gather(1, batch.actions.unsqueeze(1)).squeeze(1)
    loss = F.smooth_l1_loss(q, target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(q_net.parameters(), config.max_grad_norm)
    optimizer.step()
    return loss.detach()


def update_target(q_net: QNetwork, target_net: QNetwork, tau: float) -> None:
    """theta^- <- tau * theta + (1 - tau) * theta^-; tau = 1 is the paper's hard copy."""
    with torch.no_grad():
        for target, online in zip(target_net.parameters(), q_net.parameters(), strict=True):
            target.lerp_(online, tau)


def greedy_policy(q_net: nn.Module, device: torch.device) -> Any:
    """A batched argmax-Q policy for `ml.rl.envs.evaluate`."""

    def act(observations: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            q = q_net(torch.from_numpy(observations).to(device))
        return q.argmax(dim=1).cpu().numpy()

    return act


def derived_seed(seed: int, stream: int, step: int = 0) -> int:
    """A 32-bit seed for one stream (environment, evaluation) at one step, from the job seed.

    On resume the environment restarts from `derived_seed(seed, ENV_STREAM, step)`: its
    internal state is not checkpointed, so the episode in progress is abandoned and a new one
    starts from a seed that depends only on where the run resumed.
    """
    sequence = np.random.SeedSequence([seed % 2**64, stream, step])
    return int(sequence.generate_state(1, np.uint32)[0])


def cpu_copy(value: Any) -> Any:
    """A deep copy with every tensor on the CPU, so a checkpoint never aliases live weights."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: cpu_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(cpu_copy(v) for v in value)
    return value


def make_optimizer(q_net: QNetwork, config: DQNConfig) -> torch.optim.Adam:
    # The fused kernel is ~2.5x faster than the default on CPU for these small networks.
    return torch.optim.Adam(q_net.parameters(), lr=config.learning_rate, fused=True)


# -- training ----------------------------------------------------------------------------------
def train(
    config: DQNConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
) -> DQNModel:
    """DQN (Algorithm 1 of Mnih et al. 2015, with Adam); returns the Q-network as a model."""
    rng = seed_everything(seed)
    dev = resolve_device(device)
    observation_dim, n_actions = env_spaces(config.env_id)
    env = make_env(config.env_id)
    q_net = make_q_network(config, observation_dim, n_actions).to(dev)
    target_net = make_q_network(config, observation_dim, n_actions).to(dev)
    target_net.load_state_dict(q_net.state_dict())
    optimizer = make_optimizer(q_net, config)
    buffer = ReplayBuffer(config.buffer_size, observation_dim)
    eval_seed = derived_seed(seed, EVAL_STREAM)

    step = 0
    episodes = 0
    best: dict[str, Any] | None = None  # {"weights", "return", "step"} of the best evaluation
    last_eval: dict[str, Any] | None = None  # {"return", "step"} of the latest evaluation
    if resume is not None:
        if resume.get("env_id") != config.env_id:
            raise ConfigError(
                f"the checkpoint was trained on {resume.get('env_id')}, not {config.env_id}",
                field="env_id",
            )
        step = int(resume["step"])
        episodes = int(resume["episodes"])
        q_net.load_state_dict(resume["q_net"])
        target_net.load_state_dict(resume["target_net"])
        optimizer.load_state_dict(resume["optimizer"])
        buffer.load_state_dict(resume["buffer"])
        rng.bit_generator.state = resume["rng"]
        torch.set_rng_state(resume["torch_rng"].cpu())
        best = resume["best"]
        last_eval = resume["last_eval"]

    def checkpoint() -> dict[str, Any]:
        return {
            "step": step,
            "env_id": config.env_id,
            "episodes": episodes,
            "epsilon": epsilon_at(step, config),  # the schedule's position is `step`
            "q_net": cpu_copy(q_net.state_dict()),
            "target_net": cpu_copy(target_net.state_dict()),
            "optimizer": cpu_copy(optimizer.state_dict()),
            "buffer": buffer.state_dict(),
            "rng": rng.bit_generator.state,  # a dict of str and int
            "torch_rng": torch.get_rng_state(),
            "best": cpu_copy(best),
            "last_eval": dict(last_eval) if last_eval is not None else None,
        }

    def run_eval() -> float:
        nonlocal best, last_eval
        q_net.eval()
        returns = evaluate(
            greedy_policy(q_net, dev), config.env_id, config.eval_episodes, eval_seed
        )
        q_net.train()
        mean = float(np.mean(returns))
        last_eval = {"return": mean, "step": step}
        if best is None or mean > best["return"]:
            best = {"weights": cpu_copy(q_net.state_dict()), "return": mean, "step": step}
        hooks.on_metrics(step, {"eval/return": mean})
        return mean

    observation, _ = env.reset(seed=derived_seed(seed, ENV_STREAM, step))
    episode_return = 0.0
    recent_returns: list[float] = []
    td_losses: list[torch.Tensor] = []
    last_checkpoint = step if resume is not None else -1
    stopped_early = False
    hooks.on_progress(step, config.total_steps)
    while step < config.total_steps:
        if hooks.should_stop():
            if last_checkpoint != step:
                hooks.on_checkpoint(checkpoint())
            raise TrainingStopped(step)

        # Act: uniformly at random while the buffer fills, then epsilon-greedily.
        if step < config.learning_starts or rng.random() < epsilon_at(step, config):
            action = int(rng.integers(n_actions))
        else:
            with torch.no_grad():
                obs_t = torch.as_tensor(observation, device=dev).unsqueeze(0)
                action = int(q_net(obs_t).argmax(dim=1).item())
        next_observation, reward, terminated, truncated, _ = env.step(action)
        # Store the true s' even at a time-limit cut: the target still bootstraps from it.
        buffer.add(observation, action, float(reward), next_observation, bool(terminated))
        step += 1
        episode_return += float(reward)
        if terminated or truncated:
            episodes += 1
            recent_returns.append(episode_return)
            episode_return = 0.0
            observation, _ = env.reset()
        else:
            observation = next_observation

        # Learn: a round of gradient steps every train_frequency steps.
        if step > config.learning_starts and step % config.train_frequency == 0:
            for _ in range(config.gradient_steps):
                batch = buffer.sample(config.batch_size, rng, dev)
                td_losses.append(td_update(q_net, target_net, optimizer, batch, config))
        if step % config.target_update_interval == 0:
            update_target(q_net, target_net, config.tau)

        if step % LOG_INTERVAL == 0 or step == config.total_steps:
            metrics = {"charts/epsilon": epsilon_at(step, config)}
            if recent_returns:
                metrics["charts/episodic_return"] = float(np.mean(recent_returns))
                recent_returns.clear()
            if td_losses:  # one device sync per log, not one per gradient step
                metrics["losses/td"] = torch.stack(td_losses).mean().item()
                td_losses.clear()
            hooks.on_metrics(step, metrics)
            hooks.on_progress(step, config.total_steps)
        if step % config.eval_interval == 0 or step == config.total_steps:
            mean = run_eval()
            if config.target_return is not None and mean >= config.target_return:
                stopped_early = True
                hooks.on_progress(step, config.total_steps)
                break
        if step % config.checkpoint_interval == 0 and step < config.total_steps:
            hooks.on_checkpoint(checkpoint())
            last_checkpoint = step
    env.close()

    if last_eval is None or last_eval["step"] != step:  # resumed from the last step
        run_eval()
    assert best is not None and last_eval is not None
    if config.keep_best:
        q_net.load_state_dict(best["weights"])
    metadata = {
        "kind": DQNModel.kind,
        "algorithm": "dqn",
        "shapes": {
            "observation_dim": observation_dim,
            "n_actions": n_actions,
            "env_id": config.env_id,
        },
        "config": config.model_dump(mode="json"),
        "seed": seed,
        "versions": library_versions(),
        "summary": {
            "steps": step,
            "episodes": episodes,
            "best_eval_return": best["return"],
            "best_eval_step": best["step"],
            "final_eval_return": last_eval["return"],
            "eval_episodes": config.eval_episodes,
            "returned": "best" if config.keep_best else "final",
            "stopped_early": stopped_early,
        },
    }
    return DQNModel(metadata, q_net.cpu().eval())


# -- model -------------------------------------------------------------------------------------
class DQNModel(TrainedModel):
    """A trained Q-network: answers `q-values` and greedy `actions` for observations."""

    kind: ClassVar[str] = "dqn"
    queries: ClassVar[tuple[str, ...]] = ("q-values", "actions")

    def __init__(self, metadata: dict[str, Any], q_net: QNetwork) -> None:
        super().__init__(metadata)
        self.q_net = q_net

    @property
    def observation_dim(self) -> int:
        return int(self.metadata["shapes"]["observation_dim"])

    @property
    def n_actions(self) -> int:
        return int(self.metadata["shapes"]["n_actions"])

    def state(self) -> dict[str, Any]:
        return {"q_net": self.q_net.state_dict()}

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> DQNModel:
        config = DQNConfig.model_validate(metadata["config"])
        shapes = metadata["shapes"]
        q_net = make_q_network(config, int(shapes["observation_dim"]), int(shapes["n_actions"]))
        q_net.load_state_dict(state["q_net"])
        return cls(metadata, q_net.eval())

    def q_values(
        self, *, observations: list[Any] | None = None, states: list[Any] | None = None
    ) -> dict[str, Any]:
        """Q(s, a) for each observation (a list of observation_dim numbers) and the greedy
        action of each: {"q_values": [[...n_actions], ...], "actions": [int, ...]}."""
        dim = self.observation_dim
        if states is not None:
            raise QueryError(
                f"this model takes 'observations', each a list of {dim} numbers "
                f"(an observation of {self.metadata['shapes']['env_id']}), not 'states'",
                field="states",
            )
        x = observation_batch(observations, dim)
        with torch.no_grad():
            q = self.q_net(torch.from_numpy(x)).numpy()
        if not np.all(np.isfinite(q)):
            raise QueryError(
                "observations are too large for this network: the Q-values overflow",
                field="observations",
            )
        return {"q_values": q.tolist(), "actions": q.argmax(axis=1).tolist()}

    def actions(self, observations: list[Any]) -> list[int]:
        """The greedy action argmax_a Q(s, a) for each observation."""
        return self.q_values(observations=observations)["actions"]


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
)
