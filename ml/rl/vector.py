"""DQN's environments: the discrete-action classic-control ones (`ml.rl.envs`) and the pixel
ones (`ml.rl.pixels`), their spaces, greedy evaluation, and several stepped as one batch.

`VectorEnv` is a plain batched loop over N Gymnasium environments rather than
`gymnasium.vector.SyncVectorEnv`: the learner needs, for every environment that just ended an
episode, both the real last observation (a time-limit cut still bootstraps from it) and the
first observation of the next episode, in the same step. `SyncVectorEnv` gives that only in
its same-step autoreset mode and through the `info` dicts; the loop here gives it as arrays,
and costs one `step` call per environment, as `SyncVectorEnv` does. What batching buys is one
forward pass of the Q-network for N actions instead of N passes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from ml.core.errors import ConfigError
from ml.core.training import Interrupt, never
from ml.rl import envs
from ml.rl.envs import DiscreteEnvId, PolicyFn
from ml.rl.pixels import PIXEL_ENV_IDS, PixelEnvId

# What DQN may train on: discrete actions, vector or image observations.
DQNEnvId = DiscreteEnvId | PixelEnvId


@dataclass(frozen=True)
class DiscreteSpaces:
    """What a Q-learner must know of an environment with discrete actions."""

    observation_shape: tuple[int, ...]  # (obs_dim,) for vectors, (C, H, W) for images
    n_actions: int
    max_episode_steps: int  # Gymnasium's time limit

    @property
    def observation_dim(self) -> int:
        """Numbers per observation, as the replay buffer stores it (flat)."""
        return math.prod(self.observation_shape)

    @property
    def image(self) -> bool:
        return len(self.observation_shape) == 3


def make_env(env_id: str, render_mode: str | None = None) -> gym.Env:
    """A fresh environment, unseeded (seed it through `reset(seed=...)`); `render_mode` as
    `ml.rl.envs.make_env` takes it."""
    if env_id in PIXEL_ENV_IDS:
        return gym.make(env_id, render_mode=render_mode)
    if env_id not in envs.DISCRETE_ENV_IDS:
        choices = ", ".join((*envs.DISCRETE_ENV_IDS, *PIXEL_ENV_IDS))
        raise ConfigError(f"DQN needs discrete actions; choose from {choices}", field="env")
    return envs.make_env(env_id, render_mode)


@functools.cache
def spaces_of(env_id: str) -> DiscreteSpaces:
    """The observation shape, action count and time limit of a DQN environment."""
    env = make_env(env_id)
    try:
        obs_space, act_space = env.observation_space, env.action_space
        assert isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) in (1, 3)
        assert isinstance(act_space, gym.spaces.Discrete)
        assert env.spec is not None and env.spec.max_episode_steps is not None
        return DiscreteSpaces(
            observation_shape=tuple(int(d) for d in obs_space.shape),
            n_actions=int(act_space.n),
            max_episode_steps=int(env.spec.max_episode_steps),
        )
    finally:
        env.close()


def evaluate(
    policy_fn: PolicyFn, env_id: str, episodes: int, seed: int, interrupt: Interrupt = never
) -> list[float]:
    """Undiscounted returns of `episodes` greedy episodes, episode i from
    `reset(seed=seed + i)`, as `ml.rl.envs.evaluate` plays them (which classic-control ids go
    to, so every algorithm faces the same episodes); observations come stacked [n, ...]."""
    if env_id not in PIXEL_ENV_IDS:
        return envs.evaluate(policy_fn, env_id, episodes, seed, interrupt)
    if episodes < 1:
        raise ConfigError("evaluate needs at least one episode", field="episodes")
    running_envs = [make_env(env_id) for _ in range(episodes)]
    try:
        obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(running_envs)])
        returns = np.zeros(episodes, dtype=np.float64)  # returns[i]
        running = np.ones(episodes, dtype=bool)  # running[i]
        while running.any():
            interrupt()
            active = np.flatnonzero(running)
            actions = np.asarray(policy_fn(obs[active])).reshape(len(active))
            for i, action in zip(active, actions, strict=True):
                next_obs, reward, terminated, truncated, _ = running_envs[i].step(int(action))
                returns[i] += float(reward)
                obs[i] = next_obs
                running[i] = not (terminated or truncated)
        return returns.tolist()
    finally:
        for env in running_envs:
            env.close()


@dataclass(frozen=True)
class VectorStep:
    """What N environments returned for one batch of actions; rows are environments."""

    next_observations: np.ndarray  # [N, ...] s' of this step, the real one where an episode ended
    rewards: np.ndarray  # [N] float64
    terminated: np.ndarray  # [N] bool
    truncated: np.ndarray  # [N] bool
    observations: np.ndarray  # [N, ...] what to act on next: s', or a new episode's first obs


class VectorEnv:
    """N environments stepped as one batch, each restarted as soon as its episode ends."""

    def __init__(self, env_id: str, n: int) -> None:
        if n < 1:
            raise ValueError("a vector of environments needs at least one")
        self.envs: Sequence[gym.Env] = [make_env(env_id) for _ in range(n)]

    def __len__(self) -> int:
        return len(self.envs)

    def reset(self, seed: int) -> np.ndarray:
        """Start every environment, environment i from `reset(seed=seed + i)`; obs [N, ...]."""
        first = [env.reset(seed=seed + i)[0] for i, env in enumerate(self.envs)]
        return np.stack(first).astype(np.float32)

    def step(self, actions: np.ndarray) -> VectorStep:
        """Step environment i with actions[i]; those whose episode ended start a new one
        (unseeded: each environment's own generator goes on)."""
        n = len(self.envs)
        rewards = np.zeros(n, dtype=np.float64)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        next_obs: list[np.ndarray] = []
        starts: list[np.ndarray] = []
        for i, (env, action) in enumerate(zip(self.envs, actions.tolist(), strict=True)):
            obs, reward, terminated[i], truncated[i], _ = env.step(action)
            rewards[i] = reward
            next_obs.append(obs)
            starts.append(env.reset()[0] if terminated[i] or truncated[i] else obs)
        return VectorStep(
            next_observations=np.stack(next_obs).astype(np.float32),
            rewards=rewards,
            terminated=terminated,
            truncated=truncated,
            observations=np.stack(starts).astype(np.float32),
        )

    def close(self) -> None:
        for env in self.envs:
            env.close()
