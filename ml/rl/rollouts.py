"""Episodes of a trained policy, recorded step by step: the `rollouts` query, and the
demonstrations an inverse-RL job can learn from (stored as a `trajectories` dataset).

Two kinds of world: a Gymnasium environment, played by a batched policy function as
`ml.rl.envs.evaluate` plays it (episode i from `reset(seed=seed + i)`, the episodes side by
side, one policy call per time step); and a tabular MDP, sampled from its transition matrix
with a seeded generator. The arrays follow the `trajectories` kind (`ml.data.trajectories`):
per-step rows back to back, `episode_lengths` saying which rows are whose.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from ml.rl import vector
from ml.rl.envs import EnvSpaces, PolicyFn, checked_actions, env_spaces, make_env
from ml.rl.pixels import PIXEL_ENV_IDS
from ml.tabular.mdp import TabularMDP


@dataclass(frozen=True)
class Rollouts:
    arrays: dict[str, np.ndarray]  # observations | states, actions, episode_lengths, rewards?
    returns: list[float] | None  # undiscounted return per episode, where rewards are known


def play(policy_fn: PolicyFn, env_id: str, episodes: int, seed: int) -> Rollouts:
    """`episodes` episodes of `policy_fn` in a Gymnasium environment, to their end or the
    environment's time limit; every step's observation s_t (an image stays [C, H, W]),
    action a_t and reward r_t."""
    spaces = policy_spaces(env_id)
    envs = [env_of(env_id) for _ in range(episodes)]
    steps: list[list[tuple[np.ndarray, np.ndarray, float]]] = [[] for _ in range(episodes)]
    try:
        obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
        obs = obs.astype(np.float32)  # obs[i, d]
        running = np.ones(episodes, dtype=bool)
        while running.any():
            active = np.flatnonzero(running)
            actions = checked_actions(policy_fn, obs[active], spaces)
            for i, action in zip(active, actions, strict=True):
                env_action = int(action) if spaces.discrete else action
                next_obs, reward, terminated, truncated, _ = envs[i].step(env_action)
                steps[i].append((obs[i].copy(), np.asarray(action), float(reward)))
                obs[i] = next_obs
                running[i] = not (terminated or truncated)
    finally:
        for env in envs:
            env.close()
    flat = [step for episode in steps for step in episode]
    actions_dtype = np.int64 if spaces.discrete else np.float32
    arrays = {
        "observations": np.stack([o for o, _, _ in flat]).astype(np.float32),
        "actions": np.stack([a for _, a, _ in flat]).astype(actions_dtype),
        "rewards": np.asarray([r for _, _, r in flat], dtype=np.float32),
        "episode_lengths": np.asarray([len(e) for e in steps], dtype=np.int64),
    }
    returns = [float(sum(r for _, _, r in episode)) for episode in steps]
    return Rollouts(arrays=arrays, returns=returns)


def env_of(env_id: str, render_mode: str | None = None) -> gym.Env:
    """A fresh environment of a model's `env_id`: a classic-control task (`ml.rl.envs`, any
    kind of action) or a pixel world (`ml.rl.vector`)."""
    make = vector.make_env if env_id in PIXEL_ENV_IDS else make_env
    return make(env_id, render_mode)


def policy_spaces(env_id: str) -> EnvSpaces:
    """The spaces of a classic-control id, or of a pixel world (its images count flat)."""
    if env_id not in PIXEL_ENV_IDS:
        return env_spaces(env_id)
    pixels = vector.spaces_of(env_id)
    return EnvSpaces(
        observation_dim=pixels.observation_dim,
        discrete=True,
        n_actions=pixels.n_actions,
        action_dim=0,
        action_low=(),
        action_high=(),
        max_episode_steps=pixels.max_episode_steps,
    )


def play_tabular(
    mdp: TabularMDP, policy: np.ndarray, episodes: int, seed: int, max_steps: int
) -> Rollouts:
    """`episodes` episodes of `policy[s]` sampled from the MDP: s_0 from its start
    distribution, s' ~ P(. | s, a), until a terminal state is entered (that state is not a
    row: it has no action) or `max_steps` actions. Rewards are not recorded: the MDP keeps
    only their expectation R[s, a], not what one transition paid."""
    rng = np.random.default_rng(seed)
    states: list[int] = []
    actions: list[int] = []
    lengths: list[int] = []
    for _ in range(episodes):
        visited, taken = tabular_episode(mdp, policy, rng, max_steps)
        states.extend(visited[:-1])  # the state the episode ended in has no action
        actions.extend(taken)
        if taken:  # an episode that starts in a terminal state has no step to record
            lengths.append(len(taken))
    arrays = {
        "states": np.asarray(states, dtype=np.int64),
        "actions": np.asarray(actions, dtype=np.int64),
        "episode_lengths": np.asarray(lengths, dtype=np.int64),
        "n_states": np.asarray(mdp.n_states, dtype=np.int64),
        "n_actions": np.asarray(mdp.n_actions, dtype=np.int64),
    }
    return Rollouts(arrays=arrays, returns=None)


def tabular_episode(
    mdp: TabularMDP, policy: np.ndarray, rng: np.random.Generator, max_steps: int
) -> tuple[list[int], list[int]]:
    """One episode of `policy[s]` sampled with `rng`: the states s_0 ... s_T, the last one
    where it ended (a terminal state, or wherever `max_steps` actions led), and the actions
    a_0 ... a_{T-1}."""
    P = mdp.transitions
    n_actions = mdp.n_actions
    s = int(rng.choice(mdp.n_states, p=mdp.start))
    states: list[int] = [s]
    actions: list[int] = []
    while len(actions) < max_steps and not mdp.terminal[s]:
        a = int(policy[s])
        row = s * n_actions + a
        successors = P.indices[P.indptr[row] : P.indptr[row + 1]]
        probabilities = P.data[P.indptr[row] : P.indptr[row + 1]]
        s = int(successors[rng.choice(len(successors), p=probabilities / probabilities.sum())])
        states.append(s)
        actions.append(a)
    return states, actions
