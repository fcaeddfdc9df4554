"""Twin Delayed DDPG (Fujimoto, van Hoof and Meger 2018, "Addressing Function Approximation
Error in Actor-Critic Methods"), and DDPG as its special case.

A deterministic actor mu(s) picks a continuous action; critics Q_i(s, a) estimate its return.
Both learn off-policy from uniformly replayed transitions (`ml.rl.replay`). DDPG (Lillicrap et
al. 2016, "Continuous control with deep RL", Algorithm 1) regresses one critic on

    y = r + gamma * (1 - terminated) * Q'(s', mu'(s'))

and moves the actor up the critic's slope, grad_theta E[Q(s, mu_theta(s))] (the deterministic
policy gradient, Silver et al. 2014), with primed target networks that trail the online ones by
Polyak averaging (`tau`). TD3 adds three changes against the critic's over-estimation
(Algorithm 1 of Fujimoto et al.):

- clipped double Q-learning: two critics, both regressed on the smaller of their targets,
  y = r + gamma * (1 - terminated) * min_i Q'_i(s', a~')                          (Eq. 10);
- target policy smoothing: a~' = clip(mu'(s') + clip(eps, -c, c), -1, 1) with
  eps ~ N(0, sigma^2), so the target averages Q over a small region of actions     (Eq. 15);
- delayed policy updates: the actor and the targets move once every `policy_delay` critic
  updates (d = 2 in the paper), so the actor climbs a critic that has settled.

DDPG is this file with those switches off, as Stable-Baselines3 builds it: `twin_critics`
False, `policy_delay` 1 and no target noise (`ml.rl.ddpg` holds its defaults and name).

Actions live in [-1, 1]^d inside the learner: the actor ends in tanh, and the environment's
box [low, high] is reached by an affine map, so the noises (exploration, target smoothing)
are fractions of each dimension's half-range whatever the environment's units. Exploration
adds N(0, exploration_noise^2) to the actor's action, clipped to the box, after
`learning_starts` steps of uniformly random actions.

The defaults are rl-baselines3-zoo's tuned Pendulum-v1 TD3 (gamma 0.98, Adam 1e-3 for both,
batch 256, tau 0.005, Gaussian exploration noise 0.1, 10,000 random steps, then one gradient
step per environment step, 20,000 steps) and the paper's corrections (d = 2, sigma = 0.2,
c = 0.5), with one change: [64, 64] hidden layers instead of the Zoo's [400, 300]. On one CPU
thread a gradient step then costs about 1.1 ms instead of 9.7 ms, so a run takes about 14 s
instead of about 100 s (Stable-Baselines3 with the Zoo's settings: 113 s; `bench.td3_pendulum`
compares them), and it learns Pendulum-v1 as well: the mean greedy return on 20 fresh
episodes after 20,000 steps is -126, -127 and -122 for seeds 0, 1 and 2 (with [400, 300]:
-122 for seed 0, and SB3: -124). Learning after 5,000 random steps instead of 10,000 did no
better (-123, -127, -124) for half as much time again.

Greedy evaluation (`ml.rl.envs.evaluate`) runs every `eval_interval` steps; with `keep_best`
the returned actor (and its critics) are the best-evaluated ones. Critic values far beyond
any return the stored rewards allow warn "q_values_explode" (`ml.rl.health`), as DQN's do.
A resumed run restarts the environment's episode (it is not checkpointed), so resuming is
reproducible but not bit-identical to an uninterrupted run; a stop asked for during an
evaluation ends that step where it is (`Run.interrupt_if_asked`).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from ml.core.algorithm import Algorithm
from ml.core.cost import CALL_OVERHEAD, FORWARD, TRAIN, UPDATE_OVERHEAD, Cost, mlp_params
from ml.core.errors import QueryError
from ml.core.health import Suspicion
from ml.core.hooks import Hooks
from ml.core.metadata import model_metadata
from ml.core.nets import ACTIVATION_CHOICES, Activation, mlp, polyak_update
from ml.core.optim import adam
from ml.core.seeding import (
    Stream,
    derived_seed,
    numpy_rng,
    resolve_device,
    seeded_torch,
    torch_rng,
)
from ml.core.training import Interrupt, KeepBest, Run, never
from ml.explain.targets import Explained
from ml.rl import health
from ml.rl.envs import ContinuousEnvId, EnvSpaces, env_spaces, evaluate, make_env
from ml.rl.models import EnvironmentModel
from ml.rl.names import observation_names
from ml.rl.replay import Batch, ReplayBuffer

LOG_INTERVAL = 250  # environment steps between progress reports and training metrics

Width = Annotated[int, Field(ge=1, le=4096)]


# -- config ------------------------------------------------------------------------------------
class TD3Config(BaseModel):
    """Hyper-parameters of a TD3 run (DDPG's with the TD3 switches off, `ml.rl.ddpg`); the
    defaults reach a greedy return above -200 on Pendulum-v1 within 20,000 steps (see the
    module docstring)."""

    model_config = ConfigDict(extra="forbid")

    env: ContinuousEnvId = Field(
        "Pendulum-v1",
        description="Gymnasium classic-control environment with continuous (Box) actions: "
        "Pendulum-v1 or MountainCarContinuous-v0.",
    )
    total_steps: int = Field(
        20_000, ge=1, le=2_000_000, description="Environment steps to train for."
    )
    learning_rate_actor: float = Field(1e-3, gt=0.0, le=1.0, description="Adam step size of mu.")
    learning_rate_critic: float = Field(
        1e-3, gt=0.0, le=1.0, description="Adam step size of the critics."
    )
    buffer_size: int = Field(
        200_000, ge=1, le=2_000_000, description="Replay buffer capacity, in transitions."
    )
    batch_size: int = Field(256, ge=1, le=4096, description="Transitions per gradient step.")
    gamma: float = Field(0.98, ge=0.0, le=1.0, description="Discount factor.")
    tau: float = Field(
        0.005,
        gt=0.0,
        le=1.0,
        description="Polyak rate of the target networks: each policy update moves them this "
        "fraction of the way to the online ones (1 copies them).",
    )
    learning_starts: int = Field(
        10_000,
        ge=0,
        le=2_000_000,
        description="Environment steps of uniformly random actions before learning starts.",
    )
    train_frequency: int = Field(
        1, ge=1, le=100_000, description="Environment steps between rounds of gradient steps."
    )
    gradient_steps: int = Field(
        1, ge=1, le=10_000, description="Critic gradient steps per round of training."
    )
    exploration_noise: float = Field(
        0.1,
        ge=0.0,
        le=10.0,
        description="Standard deviation of the Gaussian exploration noise, as a fraction of "
        "each action dimension's half-range.",
    )
    twin_critics: bool = Field(
        True,
        description="Two critics and the smaller of their targets (TD3's clipped double "
        "Q-learning); false learns one critic, as DDPG.",
    )
    policy_delay: int = Field(
        2,
        ge=1,
        le=1_000,
        description="Critic updates per actor and target update (TD3's d; DDPG's is 1).",
    )
    target_policy_noise: float = Field(
        0.2,
        ge=0.0,
        le=10.0,
        description="Standard deviation of the target policy smoothing noise, as a fraction "
        "of the half-range (TD3's sigma; 0 turns smoothing off, as DDPG).",
    )
    target_noise_clip: float = Field(
        0.5,
        ge=0.0,
        le=10.0,
        description="Bound on the target smoothing noise's magnitude, as a fraction of the "
        "half-range (TD3's c).",
    )
    hidden: list[Width] = Field(
        default_factory=lambda: [64, 64],
        min_length=1,
        max_length=8,
        description="Hidden layer widths of the actor and of each critic.",
    )
    activation: Activation = Field(
        "relu",
        description=f"Hidden-layer activation of the actor and of each critic (the actor's "
        f"output is always tanh, the critics' linear): {ACTIVATION_CHOICES}.",
    )
    eval_interval: int = Field(
        2_000, ge=1, le=2_000_000, description="Environment steps between greedy evaluations."
    )
    eval_episodes: int = Field(10, ge=1, le=100, description="Episodes per greedy evaluation.")
    keep_best: bool = Field(
        True,
        description="Return the best-evaluated actor (and its critics) instead of the last.",
    )
    target_return: float | None = Field(
        None,
        ge=-1e6,
        le=1e6,
        description="Stop as soon as the mean greedy evaluation return reaches this; "
        "null trains for total_steps.",
    )
    stop_on: list[Literal["q_values_explode", "returns_collapse"]] = Field(
        default_factory=list,
        max_length=2,
        description="Health warnings that end training early instead of only being reported "
        "(q_values_explode, returns_collapse; see the job's warnings); the model then holds "
        "the best-evaluated actor (with keep_best).",
    )
    checkpoint_interval: int = Field(
        10_000, ge=1, le=2_000_000, description="Environment steps between checkpoints."
    )


# -- networks ----------------------------------------------------------------------------------
def make_actor(config: TD3Config, observation_dim: int, action_dim: int) -> nn.Sequential:
    """mu: observation [B, obs_dim] -> action [B, action_dim] in [-1, 1] (tanh)."""
    return mlp(observation_dim, config.hidden, action_dim, config.activation, out_act="tanh")


class Critics(nn.Module):
    """Q_i(s, a) for i < n: one critic (DDPG) or two (TD3), each an MLP on [s, a]."""

    def __init__(
        self, observation_dim: int, action_dim: int, hidden: list[int], activation: str, n: int
    ) -> None:
        super().__init__()
        self.q = nn.ModuleList(
            mlp(observation_dim + action_dim, hidden, 1, activation) for _ in range(n)
        )

    def forward(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q[i, b] of observations [B, obs_dim] and actions [B, action_dim] in [-1, 1]."""
        x = torch.cat([observations, actions], dim=1)  # [B, obs_dim + action_dim]
        return torch.cat([q(x).T for q in self.q])  # [n, B]

    def first(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q_1[b]: the critic the actor climbs (Algorithm 1 of Fujimoto et al.)."""
        return self.q[0](torch.cat([observations, actions], dim=1)).squeeze(1)


class CriticOfActor(nn.Module):
    """observations [B, obs_dim] -> Q(s, mu(s)) [B, 1], the smaller of the critics."""

    def __init__(self, actor: nn.Module, critics: Critics) -> None:
        super().__init__()
        self.actor, self.critics = actor, critics

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        q = self.critics(observations, self.actor(observations))  # q[n, B]
        return q.min(dim=0).values[:, None]


def make_critics(config: TD3Config, observation_dim: int, action_dim: int) -> Critics:
    n = 2 if config.twin_critics else 1
    return Critics(observation_dim, action_dim, config.hidden, config.activation, n)


class ActionScale:
    """The affine map between the learner's actions in [-1, 1] and the environment's box."""

    def __init__(
        self, low: tuple[float, ...] | list[float], high: tuple[float, ...] | list[float]
    ) -> None:
        low_, high_ = np.asarray(low, np.float32), np.asarray(high, np.float32)
        self.low, self.high = low_, high_  # [action_dim]
        self.center = (high_ + low_) / 2  # [action_dim]
        self.half_range = (high_ - low_) / 2  # [action_dim]

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        """[-1, 1] -> [low, high], elementwise."""
        return self.center + self.half_range * actions

    def from_env(self, actions: np.ndarray) -> np.ndarray:
        """[low, high] -> [-1, 1], clipped to the box first (as the environments clip)."""
        return (np.clip(actions, self.low, self.high) - self.center) / self.half_range


# -- cost --------------------------------------------------------------------------------------
_spaces = functools.cache(env_spaces)  # the spaces of an environment never change


def cost(config: TD3Config, *, datasets: Mapping[str, Any] | None = None) -> Cost:
    """Estimated operations of a run (`ml.core.cost`), with p_a the actor's parameters, p_c
    one critic's, n critics and B = batch_size:

    - a critic update: the target actor's and target critics' forward passes on s' and the
      critics' forward and backward: B (2 p_a + n (2 + 6) p_c), plus an optimiser step;
    - an actor update every policy_delay critic updates: forward and backward through the
      actor and the first critic, B 6 (p_a + p_c), an optimiser step and the Polyak
      update of every target, 2 (p_a + n p_c);
    - updates = (total_steps - learning_starts) / train_frequency x gradient_steps;
    - an environment step: the acting forward pass, 2 p_a, and the step's overhead;
    - an evaluation every eval_interval steps: eval_episodes episodes of at most the time
      limit, one batched forward pass per time step.

    Per step, what sits between two stop checks: one critic and one actor update, an
    environment step and one evaluation time step.
    """
    spaces = _spaces(config.env)
    p_a = mlp_params([spaces.observation_dim, *config.hidden, spaces.action_dim])
    p_c = mlp_params([spaces.observation_dim + spaces.action_dim, *config.hidden, 1])
    n = 2 if config.twin_critics else 1
    batch, steps = config.batch_size, config.total_steps
    critic_update = batch * (FORWARD * p_a + n * (FORWARD + TRAIN) * p_c) + UPDATE_OVERHEAD
    actor_update = batch * TRAIN * (p_a + p_c) + UPDATE_OVERHEAD + 2 * (p_a + n * p_c)
    update = critic_update + actor_update / config.policy_delay
    rounds = steps // config.train_frequency - min(steps, config.learning_starts) // (
        config.train_frequency
    )
    env_step = FORWARD * p_a + 2 * CALL_OVERHEAD
    eval_time_step = config.eval_episodes * (FORWARD * p_a + CALL_OVERHEAD) + CALL_OVERHEAD
    evaluation = spaces.max_episode_steps * eval_time_step
    total = (
        rounds * config.gradient_steps * update
        + steps * env_step
        + (steps // config.eval_interval + 1) * evaluation
    )
    return Cost(
        total=total,
        per_step=critic_update + actor_update + env_step + eval_time_step,
        total_fields=("total_steps", "gradient_steps", "batch_size", "hidden"),
        step_fields=("batch_size", "hidden"),
    )


# -- the update (Algorithm 1 of Fujimoto et al.) -----------------------------------------------
@dataclass
class Learner:
    """The networks and optimisers one update touches."""

    actor: nn.Module
    actor_target: nn.Module
    critics: Critics
    critics_target: Critics
    actor_optimizer: torch.optim.Optimizer
    critic_optimizer: torch.optim.Optimizer
    noise: torch.Generator  # target policy smoothing, on the learner's device


def smoothed_target_actions(
    next_actions: torch.Tensor, std: float, clip: float, generator: torch.Generator
) -> torch.Tensor:
    """a~' = clip(mu'(s') + clip(eps, -c, c), -1, 1), eps ~ N(0, std^2) (Eq. 15): the target
    averages Q over nearby actions instead of trusting a narrow peak. [B, action_dim]."""
    if std <= 0.0 or clip <= 0.0:  # no smoothing (DDPG): no draws either
        return next_actions
    eps = torch.randn(
        next_actions.shape, generator=generator, device=next_actions.device
    )  # [B, action_dim]
    eps = (eps * std).clamp_(-clip, clip)
    return (next_actions + eps).clamp_(-1.0, 1.0)


def td_target(
    rewards: torch.Tensor, terminated: torch.Tensor, next_q: torch.Tensor, gamma: float
) -> torch.Tensor:
    """y[b] = r + gamma (1 - terminated) min_i Q'_i(s', a~') from next_q[i, b] (Eq. 10; with
    one critic, DDPG's target)."""
    return rewards + gamma * (1.0 - terminated) * next_q.min(dim=0).values


def update(
    learner: Learner, batch: Batch, config: TD3Config, index: int
) -> dict[str, torch.Tensor]:
    """Critic update number `index` (from 0) on `batch`, and every `policy_delay`-th one
    the actor's and the targets'; returns the metrics, still on the device."""
    with torch.no_grad():
        next_actions = smoothed_target_actions(
            learner.actor_target(batch.next_observations),
            config.target_policy_noise,
            config.target_noise_clip,
            learner.noise,
        )  # a~'[B, action_dim]
        next_q = learner.critics_target(batch.next_observations, next_actions)  # Q'[i, b]
        target = td_target(batch.rewards, batch.terminated, next_q, config.gamma)  # y[b]
    q = learner.critics(batch.observations, batch.actions)  # Q[i, b]
    # Each critic's mean squared error, summed over the critics.
    critic_loss = (q - target).pow(2).mean(dim=1).sum()
    learner.critic_optimizer.zero_grad(set_to_none=True)
    critic_loss.backward()
    learner.critic_optimizer.step()
    q = q.detach()
    metrics = {
        "losses/critic": critic_loss.detach(),
        "rl/q_mean": q.mean(),
        "rl/q_max_abs": q.abs().max(),
    }

    if (index + 1) % config.policy_delay == 0:
        # Deterministic policy gradient through the first critic: only the actor's
        # gradients are computed, not the critic weights' (half the critic's backward).
        actor_loss = -learner.critics.first(
            batch.observations, learner.actor(batch.observations)
        ).mean()
        params = list(learner.actor.parameters())
        for param, grad in zip(params, torch.autograd.grad(actor_loss, params), strict=True):
            param.grad = grad
        learner.actor_optimizer.step()
        polyak_update(learner.critics_target, learner.critics, config.tau)
        polyak_update(learner.actor_target, learner.actor, config.tau)
        metrics["losses/actor"] = actor_loss.detach()
    return metrics


# -- acting and evaluating ----------------------------------------------------------------------
def deterministic_policy(actor: nn.Module, scale: ActionScale, device: torch.device) -> Any:
    """mu as a batched policy for `ml.rl.envs.evaluate`: obs [n, obs_dim] -> actions
    [n, action_dim] in the environment's units."""

    def act(observations: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            a = actor(torch.as_tensor(observations, device=device))  # [n, action_dim]
        return scale.to_env(a.cpu().numpy())

    return act


def greedy_return(
    actor: nn.Module, config: TD3Config, scale: ActionScale, seed: int, interrupt: Interrupt = never
) -> float:
    """Mean return of mu without exploration over `eval_episodes`, always on the same
    episodes; `interrupt` may stop it between two time steps."""
    device = next(actor.parameters()).device
    actor.eval()
    try:
        policy = deterministic_policy(actor, scale, device)
        returns = evaluate(policy, config.env, config.eval_episodes, seed, interrupt)
    finally:
        actor.train()
    return float(np.mean(returns))


def critic_values_explode(buffer: ReplayBuffer, gamma: float, spaces: EnvSpaces) -> Suspicion:
    """`ml.rl.health.q_values_explode` on the critics' |Q| against the rewards `buffer`
    holds, with advice for this algorithm."""
    return health.q_values_explode(
        health.largest_stored_reward(buffer),
        health.discount_horizon(gamma, spaces.max_episode_steps),
        values="critic values",
        remedy="a smaller learning_rate_critic, a lower gamma or a smaller tau",
    )


# -- training ----------------------------------------------------------------------------------
def train(
    config: TD3Config,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
) -> TD3Model:
    """TD3 (Algorithm 1 of Fujimoto et al. 2018); returns the actor and critics as a model."""
    return train_actor_critic(
        config, TD3Model, seed=seed, hooks=hooks, device=device, resume=resume
    )


def train_actor_critic(
    config: TD3Config,
    model_class: type[TD3Model],
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
) -> TD3Model:
    """The loop TD3 and DDPG share; `model_class` names the algorithm and its model kind."""
    dev = resolve_device(device)
    spaces = env_spaces(config.env)
    if spaces.discrete:  # the config's env type forbids it; a guard for direct callers
        raise ValueError(f"{config.env} has discrete actions; TD3 needs a Box")
    obs_dim, action_dim = spaces.observation_dim, spaces.action_dim
    scale = ActionScale(spaces.action_low, spaces.action_high)
    env = make_env(config.env)
    with seeded_torch(seed):
        actor = make_actor(config, obs_dim, action_dim).to(dev)
        critics = make_critics(config, obs_dim, action_dim).to(dev)
    learner = Learner(
        actor=actor,
        actor_target=copy.deepcopy(actor),
        critics=critics,
        critics_target=copy.deepcopy(critics),
        actor_optimizer=adam(actor.parameters(), lr=config.learning_rate_actor, device=dev),
        critic_optimizer=adam(critics.parameters(), lr=config.learning_rate_critic, device=dev),
        noise=torch_rng(derived_seed(seed, Stream.NOISE), dev),
    )
    for target in (learner.actor_target, learner.critics_target):
        target.requires_grad_(False)
    buffer = ReplayBuffer.for_env(config.buffer_size, spaces)  # actions stored in [-1, 1]
    rng = numpy_rng(seed)  # random actions, exploration noise and minibatches
    evaluations = KeepBest()
    best = nn.ModuleDict({"actor": actor, "critics": critics})  # what KeepBest keeps

    returns = health.ReturnRange()  # first and best evaluations, for returns_collapse
    suspicions = [
        critic_values_explode(buffer, config.gamma, spaces),
        health.returns_collapse(
            returns,
            remedy="the actor has forgotten its policy; the model holds the best-evaluated "
            "actor (keep_best); try smaller learning rates, a larger buffer_size, or "
            "target_return to stop once the task is solved",
        ),
    ]
    run = Run(
        hooks, config, log_interval=LOG_INTERVAL, suspicions=suspicions, stop_on=config.stop_on
    )
    run.track(
        actor=actor,
        actor_target=learner.actor_target,
        critics=critics,
        critics_target=learner.critics_target,
        actor_optimizer=learner.actor_optimizer,
        critic_optimizer=learner.critic_optimizer,
        buffer=buffer,
        rng=rng,
        noise=learner.noise,
        evaluations=evaluations,
    )
    run.values["episodes"] = 0
    run.values["updates"] = 0  # critic updates so far: every policy_delay-th moves the actor
    run.values["returns"] = returns.state_dict()
    run.start(resume)
    returns.load_state_dict(run.values["returns"])

    def evaluation() -> float:
        """Greedy evaluation of this step's actor, offered to `evaluations`."""
        eval_seed = derived_seed(seed, Stream.EVAL)
        mean = greedy_return(actor, config, scale, eval_seed, run.interrupt_if_asked)
        evaluations.offer(run.step, mean, best)
        returns.offer(mean)
        run.values["returns"] = returns.state_dict()
        run.report({"eval/return": mean})
        return mean

    # The episode in progress at a checkpoint is not saved: a resumed run starts a new one.
    observation, _ = env.reset(seed=derived_seed(seed, Stream.ENV, run.step))
    episode_return = 0.0
    while run.step < config.total_steps:
        run.stop_if_asked()
        # Act: uniformly at random while the buffer fills, then mu(s) plus Gaussian noise.
        if run.step < config.learning_starts:
            action = rng.uniform(-1.0, 1.0, size=action_dim)  # [action_dim] in [-1, 1]
        else:
            with torch.no_grad():
                mu = actor(torch.as_tensor(observation, device=dev).unsqueeze(0))  # [1, d]
            action = mu.cpu().numpy()[0]
            if config.exploration_noise > 0.0:
                noise = rng.normal(0.0, config.exploration_noise, size=action_dim)
                action = np.clip(action + noise, -1.0, 1.0)
        next_observation, reward, terminated, truncated, _ = env.step(scale.to_env(action))
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
                run.metrics.add_all(update(learner, batch, config, run.values["updates"]))
                run.values["updates"] += 1

        if run.due(config.eval_interval):
            mean = evaluation()
            if config.target_return is not None and mean >= config.target_return:
                break
        run.end_step()
        if run.ended_early is not None:  # a health warning the config's stop_on names
            break
    env.close()
    if evaluations.last_step != run.step:  # resumed from a stop inside the last step
        evaluation()
    run.finish()

    if config.keep_best:
        evaluations.restore(best)
    kept_step = evaluations.step if config.keep_best else run.step
    health.warn_if_ended_early(run, hooks, config.total_steps, kept_step, "actor")
    reason = run.ended_early
    metadata = model_metadata(
        kind=model_class.kind,
        algorithm=model_class.kind,
        config=config,
        seed=seed,
        shapes={
            "observation_dim": obs_dim,
            "action_dim": action_dim,
            "action_low": list(spaces.action_low),
            "action_high": list(spaces.action_high),
            "env_id": config.env,
        },
        summary={
            "steps": run.step,
            "episodes": run.values["episodes"],
            "updates": run.values["updates"],
            **evaluations.summary(),
            "eval_episodes": config.eval_episodes,
            "returned": "best" if config.keep_best else "final",
            "stopped_early": run.step < config.total_steps,
            **(
                {"ended_on": {"step": reason.step, "code": reason.code}}
                if reason is not None
                else {}
            ),
        },
    )
    return model_class(metadata, actor.cpu().eval(), critics.cpu().eval())


# -- model -------------------------------------------------------------------------------------
class TD3Model(EnvironmentModel):
    """A trained actor and its critics: actions of observations, critic values of
    observation-action pairs, and the deterministic policy's returns."""

    kind: ClassVar[str] = "td3"
    config_class: ClassVar[type[TD3Config]] = TD3Config
    actor: nn.Module  # observations [B, observation_dim] -> actions [B, action_dim] in [-1, 1]
    critics: Critics  # (observations, actions in [-1, 1]) -> Q [n_critics, B]

    def __init__(self, metadata: dict[str, Any], actor: nn.Module, critics: Critics) -> None:
        super().__init__(metadata)
        self.actor = actor
        self.critics = critics
        self.scale = ActionScale(self.shapes["action_low"], self.shapes["action_high"])

    @property
    def action_dim(self) -> int:
        return int(self.metadata["shapes"]["action_dim"])

    def state(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "critics": self.critics.state_dict()}

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> TD3Model:
        config = cls.config_class.model_validate(metadata["config"])
        shapes = metadata["shapes"]
        obs_dim, action_dim = int(shapes["observation_dim"]), int(shapes["action_dim"])
        actor = make_actor(config, obs_dim, action_dim)
        actor.load_state_dict(state["actor"])
        critics = make_critics(config, obs_dim, action_dim)
        critics.load_state_dict(state["critics"])
        return cls(metadata, actor.eval(), critics.eval())

    def _observations(self, observations: np.ndarray) -> torch.Tensor:
        x = np.asarray(observations, dtype=np.float32)
        return torch.as_tensor(x.reshape(-1, self.observation_dim))  # [B, obs_dim]

    def act(
        self, observations: np.ndarray, noise: float = 0.0, seed: int | None = None
    ) -> np.ndarray:
        """Actions [B, action_dim] float32 of mu for observations [B, observation_dim],
        within the action box; with `noise` > 0, plus N(0, noise^2) exploration noise as a
        fraction of each dimension's half-range (clipped to the box), drawn from `seed`
        (the same seed, the same noise; None: fresh entropy from the OS)."""
        with torch.no_grad():
            a = self.actor(self._observations(observations)).numpy()  # [B, action_dim]
        if noise > 0.0:
            eps = np.random.default_rng(seed).normal(0.0, noise, size=a.shape)
            a = np.clip(a + eps, -1.0, 1.0)
        return self.scale.to_env(a).astype(np.float32)

    def critic_values(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Q(s, a) [B] float32 for observations [B, observation_dim] and actions
        [B, action_dim] in the environment's units (clipped to the box, as the environment
        clips them): the smaller of the twin critics (TD3), or the one critic (DDPG)."""
        x = self._observations(observations)
        a = np.asarray(actions, dtype=np.float32).reshape(-1, self.action_dim)
        if len(a) != len(x):
            raise QueryError(
                f"{len(x)} observations but {len(a)} actions: send one action per observation",
                field="actions",
            )
        normalized = torch.as_tensor(self.scale.from_env(a), dtype=torch.float32)
        with torch.no_grad():
            return self.critics(x, normalized).min(dim=0).values.numpy()

    def explained(self) -> Explained:
        """The critic as explanations see it: observations -> Q(s, mu(s)), the value the
        critic gives the actor's own action (the smaller twin for TD3), so a saliency map
        says what in an observation the agent's valuation of its choice depends on."""
        return Explained(
            forward=CriticOfActor(self.actor, self.critics),
            root=nn.ModuleDict({"actor": self.actor, "critics": self.critics}),
            input_shape=(self.observation_dim,),
            input_field="observations",
            outputs=("Q(s, mu(s))",),
            output_label="critic value of the actor's action",
            input_names=observation_names(self.env_id, self.observation_dim),
        )

    def evaluate_policy(self, episodes: int, seed: int) -> list[float]:
        """Undiscounted returns of mu without noise in `episodes` fresh episodes, episode i
        from `reset(seed=seed + i)` (`ml.rl.envs.evaluate`)."""
        return evaluate(lambda o: self.act(o), self.env_id, episodes, seed)


ALGORITHM = Algorithm(
    name="td3",
    family="rl",
    description="Twin Delayed DDPG (Fujimoto et al. 2018): a deterministic actor and twin "
    "critics with clipped double Q-learning, delayed policy updates and target policy "
    "smoothing; continuous-action classic-control Gymnasium environments.",
    config=TD3Config,
    train=train,
    model=TD3Model,
    queue="gpu",
    cost=cost,
    exact_resume=False,  # the environment's episode in progress is not checkpointed
)
