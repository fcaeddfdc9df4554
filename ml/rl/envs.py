"""Gymnasium environments the RL algorithms may train on, and greedy evaluation.

Only classic-control tasks with discrete actions are allowed: they ship with Gymnasium, need
no extra packages, downloads or rendering, and run fast enough on a CPU. Every algorithm that
acts in an environment uses `make_env` and `evaluate` from here, so two algorithms evaluated
with the same seed face the same episodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, get_args

import gymnasium as gym
import numpy as np

from ml.core.errors import ConfigError

EnvId = Literal["CartPole-v1", "Acrobot-v1", "MountainCar-v0"]
ENV_IDS: tuple[str, ...] = get_args(EnvId)

# A batch of observations (n, observation_dim) float32 -> one discrete action per row.
PolicyFn = Callable[[np.ndarray], Sequence[int] | np.ndarray]


def make_env(env_id: str) -> gym.Env:
    """A fresh environment with Gymnasium's usual time limit (500 steps for CartPole-v1).

    Seed it through `env.reset(seed=...)`; it is not seeded here so callers decide.
    """
    if env_id not in ENV_IDS:
        raise ConfigError(
            f"unknown environment {env_id!r}; choose from {', '.join(ENV_IDS)}", field="env_id"
        )
    return gym.make(env_id)


def env_spaces(env_id: str) -> tuple[int, int]:
    """(observation_dim, n_actions) of an allowed environment."""
    env = make_env(env_id)
    try:
        obs_space, act_space = env.observation_space, env.action_space
        assert isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1
        assert isinstance(act_space, gym.spaces.Discrete)
        return int(obs_space.shape[0]), int(act_space.n)
    finally:
        env.close()


def evaluate(policy_fn: PolicyFn, env_id: str, episodes: int, seed: int) -> list[float]:
    """Undiscounted returns of `episodes` episodes played by `policy_fn`, without exploration.

    Episode i starts from `reset(seed=seed + i)`, so the same seed replays the same episodes
    and a different seed gives fresh ones. The episodes run side by side and `policy_fn` is
    called once per time step on the stacked observations of the episodes still running, a
    (n, observation_dim) float32 array; it returns n actions. Batching keeps a network policy
    to one forward pass per time step instead of one per episode and step.
    """
    if episodes < 1:
        raise ConfigError("evaluate needs at least one episode", field="episodes")
    envs = [make_env(env_id) for _ in range(episodes)]
    try:
        obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
        obs = obs.astype(np.float32)
        returns = np.zeros(episodes, dtype=np.float64)
        running = np.ones(episodes, dtype=bool)
        while running.any():
            active = np.flatnonzero(running)
            actions = np.asarray(policy_fn(obs[active])).reshape(-1)
            if actions.shape[0] != active.shape[0]:
                raise ValueError(
                    f"policy_fn returned {actions.shape[0]} actions for {active.shape[0]} "
                    "observations"
                )
            for i, action in zip(active, actions, strict=True):
                next_obs, reward, terminated, truncated, _ = envs[i].step(int(action))
                returns[i] += float(reward)
                obs[i] = next_obs
                if terminated or truncated:
                    running[i] = False
        return returns.tolist()
    finally:
        for env in envs:
            env.close()
