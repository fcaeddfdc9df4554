"""Gymnasium environments the RL algorithms may train on, and greedy evaluation.

Only classic-control tasks are allowed: they ship with Gymnasium, need no extra packages,
downloads or rendering, and run fast enough on a CPU. Three have discrete actions (DQN's
kind) and two continuous, Box actions (DDPG and TD3's kind: a vector of forces or torques
within bounds). Car on the hill (`ml.rl.car_on_hill`, Ernst et al. 2005's benchmark for
Fitted Q Iteration) is ours, not Gymnasium's, and also has discrete actions. Every
algorithm that acts in an environment uses `make_env`, `env_spaces` and `evaluate` from
here, so two algorithms evaluated with the same seed face the same episodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import gymnasium as gym
import numpy as np

from ml.core.errors import ConfigError
from ml.core.training import Interrupt, never
from ml.rl import car_on_hill  # noqa: F401 (registers CarOnHill-v0 with Gymnasium)

DiscreteEnvId = Literal["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "CarOnHill-v0"]
ContinuousEnvId = Literal["Pendulum-v1", "MountainCarContinuous-v0"]
EnvId = DiscreteEnvId | ContinuousEnvId
DISCRETE_ENV_IDS: tuple[str, ...] = get_args(DiscreteEnvId)
CONTINUOUS_ENV_IDS: tuple[str, ...] = get_args(ContinuousEnvId)
ENV_IDS: tuple[str, ...] = DISCRETE_ENV_IDS + CONTINUOUS_ENV_IDS

# A batch of observations [n, observation_dim] float32 -> actions: [n] integers for discrete
# actions, [n, action_dim] floats for continuous ones.
PolicyFn = Callable[[np.ndarray], Sequence[int] | np.ndarray]


@dataclass(frozen=True)
class EnvSpaces:
    """What a learner must know of an environment's observations and actions."""

    observation_dim: int
    discrete: bool
    n_actions: int  # discrete actions: how many (0 for continuous actions)
    action_dim: int  # continuous actions: length of the action vector (0 for discrete)
    action_low: tuple[float, ...]  # [action_dim] lower bounds (empty for discrete)
    action_high: tuple[float, ...]  # [action_dim] upper bounds (empty for discrete)
    max_episode_steps: int  # Gymnasium's time limit


def make_env(env_id: str, render_mode: str | None = None) -> gym.Env:
    """A fresh environment with Gymnasium's usual time limit (500 steps for CartPole-v1).

    Seed it through `env.reset(seed=...)`; it is not seeded here so callers decide.
    `render_mode` ("rgb_array") is passed only when given: an environment that cannot render
    (car on the hill) takes no such argument.
    """
    if env_id not in ENV_IDS:
        raise ConfigError(
            f"unknown environment {env_id!r}; choose from {', '.join(ENV_IDS)}", field="env_id"
        )
    return gym.make(env_id) if render_mode is None else gym.make(env_id, render_mode=render_mode)


def env_spaces(env_id: str) -> EnvSpaces:
    """The observation and action spaces of an allowed environment."""
    env = make_env(env_id)
    try:
        obs_space, act_space = env.observation_space, env.action_space
        assert isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1
        assert env.spec is not None and env.spec.max_episode_steps is not None
        common = {
            "observation_dim": int(obs_space.shape[0]),
            "max_episode_steps": int(env.spec.max_episode_steps),
        }
        if isinstance(act_space, gym.spaces.Discrete):
            return EnvSpaces(
                discrete=True,
                n_actions=int(act_space.n),
                action_dim=0,
                action_low=(),
                action_high=(),
                **common,
            )
        assert isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1
        return EnvSpaces(
            discrete=False,
            n_actions=0,
            action_dim=int(act_space.shape[0]),
            action_low=tuple(float(x) for x in act_space.low),
            action_high=tuple(float(x) for x in act_space.high),
            **common,
        )
    finally:
        env.close()


def checked_actions(policy_fn: PolicyFn, obs: np.ndarray, spaces: EnvSpaces) -> np.ndarray:
    """The policy's actions for `obs` [n, obs_dim], checked: [n] ints or [n, action_dim]
    floats, clipped to the action box as the environments' own physics does."""
    n = obs.shape[0]
    actions = np.asarray(policy_fn(obs))
    expected: tuple[int, ...] = (n,) if spaces.discrete else (n, spaces.action_dim)
    if actions.size != int(np.prod(expected)):
        raise ValueError(f"policy_fn returned {actions.shape} actions for {n} observations")
    if spaces.discrete:
        return actions.reshape(n).astype(np.int64)
    low, high = np.asarray(spaces.action_low), np.asarray(spaces.action_high)
    return np.clip(actions.reshape(expected).astype(np.float32), low, high)


def evaluate(
    policy_fn: PolicyFn, env_id: str, episodes: int, seed: int, interrupt: Interrupt = never
) -> list[float]:
    """Undiscounted returns of `episodes` episodes played by `policy_fn`, without exploration.

    Episode i starts from `reset(seed=seed + i)`, so the same seed replays the same episodes
    and a different seed gives fresh ones. The episodes run side by side and `policy_fn` is
    called once per time step on the stacked observations of the episodes still running, a
    [n, observation_dim] float32 array; it returns n actions (see `PolicyFn`). Batching keeps
    a network policy to one forward pass per time step instead of one per episode and step.
    `interrupt` is called before every time step: a training run's stop may abandon a long
    evaluation there (`ml.core.training.Run.interrupt_if_asked`).
    """
    if episodes < 1:
        raise ConfigError("evaluate needs at least one episode", field="episodes")
    spaces = env_spaces(env_id)
    envs = [make_env(env_id) for _ in range(episodes)]
    try:
        obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
        obs = obs.astype(np.float32)  # obs[i, d]
        returns = np.zeros(episodes, dtype=np.float64)  # returns[i]
        running = np.ones(episodes, dtype=bool)  # running[i]
        while running.any():
            interrupt()
            active = np.flatnonzero(running)
            actions = checked_actions(policy_fn, obs[active], spaces)
            for i, action in zip(active, actions, strict=True):
                env_action = int(action) if spaces.discrete else action
                next_obs, reward, terminated, truncated, _ = envs[i].step(env_action)
                returns[i] += float(reward)
                obs[i] = next_obs
                if terminated or truncated:
                    running[i] = False
        return returns.tolist()
    finally:
        for env in envs:
            env.close()
