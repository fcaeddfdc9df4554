"""Experience replay (Lin 1992; Mnih et al. 2015): a ring buffer of transitions.

Off-policy learners store every transition (s, a, r, s', terminated) and learn from uniformly
sampled mini-batches, which breaks the correlation between consecutive updates. The buffer is
backed by CPU torch tensors so a checkpoint holds it as tensors (loadable with
`torch.load(weights_only=True)`); writes go through NumPy views of the same memory, which
costs a few hundred nanoseconds per transition instead of several torch dispatches.

Actions are either discrete (an int64 per transition, DQN) or continuous (a float32 vector of
`action_dim` per transition, DDPG/TD3), chosen by `action_dim`.

Only `terminated` is stored, never `truncated`: a time-limit cut is not a terminal state, so
the learner must still bootstrap from s' (Pardo et al. 2018, "Time Limits in RL").

A transition may also span several steps: `NStepWriter` folds n consecutive steps of one
environment into (s_t, a_t, R_t^(n), s_{t+n}), and the buffer keeps each row's `horizon`,
the number of steps between s and s' (1 for an ordinary transition), so the learner
discounts its bootstrap by gamma^horizon. Observations are stored flat; a learner with
image observations reshapes them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ml.rl.envs import EnvSpaces


@dataclass(frozen=True)
class Batch:
    """A mini-batch of transitions on the learner's device; rows are aligned."""

    observations: torch.Tensor  # [B, obs_dim] float32
    actions: torch.Tensor  # [B] int64 (discrete) or [B, action_dim] float32 (continuous)
    rewards: torch.Tensor  # [B] float32
    next_observations: torch.Tensor  # [B, obs_dim] float32
    terminated: torch.Tensor  # [B] float32, 1.0 where s' is terminal
    # [B] float32, steps between s and s' (n-step transitions); None means 1 everywhere.
    horizons: torch.Tensor | None = None


class ReplayBuffer:
    """A fixed-capacity FIFO of transitions with vector observations; actions are discrete
    (`action_dim=None`) or continuous vectors of `action_dim` numbers."""

    def __init__(self, capacity: int, observation_dim: int, action_dim: int | None = None) -> None:
        if capacity < 1 or observation_dim < 1 or (action_dim is not None and action_dim < 1):
            raise ValueError("capacity, observation_dim and action_dim must be positive")
        self.capacity = capacity
        self.observation_dim = observation_dim
        self.action_dim = action_dim
        self.observations = torch.zeros(capacity, observation_dim, dtype=torch.float32)
        self.next_observations = torch.zeros(capacity, observation_dim, dtype=torch.float32)
        if action_dim is None:
            self.actions = torch.zeros(capacity, dtype=torch.int64)  # actions[i]
        else:
            self.actions = torch.zeros(capacity, action_dim, dtype=torch.float32)  # [i, d]
        self.rewards = torch.zeros(capacity, dtype=torch.float32)
        self.terminated = torch.zeros(capacity, dtype=torch.float32)
        self.horizons = torch.ones(capacity, dtype=torch.float32)  # steps from s to s'
        self.pos = 0  # next row to write
        self.size = 0  # rows holding a transition
        self._bind_views()

    @classmethod
    def for_env(cls, capacity: int, spaces: EnvSpaces) -> ReplayBuffer:
        """A buffer shaped for an environment's observations and actions."""
        return cls(capacity, spaces.observation_dim, None if spaces.discrete else spaces.action_dim)

    def _bind_views(self) -> None:
        # NumPy views share memory with the tensors: writing one writes the other.
        self._obs = self.observations.numpy()
        self._next_obs = self.next_observations.numpy()
        self._actions = self.actions.numpy()
        self._rewards = self.rewards.numpy()
        self._terminated = self.terminated.numpy()
        self._horizons = self.horizons.numpy()

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        observation: np.ndarray,
        action: int | np.ndarray,
        reward: float,
        next_observation: np.ndarray,
        terminated: bool,
        horizon: int = 1,
    ) -> int:
        """Store one transition (spanning `horizon` steps), overwriting the oldest once the
        buffer is full; returns its row."""
        i = self.pos
        self._obs[i] = observation
        self._next_obs[i] = next_observation
        self._actions[i] = action
        self._rewards[i] = reward
        self._terminated[i] = float(terminated)
        self._horizons[i] = horizon
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        return i

    def sample(
        self, batch_size: int, rng: np.random.Generator, device: torch.device | str = "cpu"
    ) -> Batch:
        """`batch_size` transitions drawn uniformly with replacement, moved to `device`."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return self.gather(rng.integers(0, self.size, size=batch_size), device)

    def gather(self, rows: np.ndarray, device: torch.device | str = "cpu") -> Batch:
        """The transitions at `rows` [B] (int64), moved to `device`."""
        idx = torch.from_numpy(rows)
        return Batch(
            observations=self.observations[idx].to(device),
            actions=self.actions[idx].to(device),
            rewards=self.rewards[idx].to(device),
            next_observations=self.next_observations[idx].to(device),
            terminated=self.terminated[idx].to(device),
            horizons=self.horizons[idx].to(device),
        )

    # -- checkpointing -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The stored rows (copies, so later writes do not change a checkpoint) and cursor."""
        n = self.size
        return {
            "capacity": self.capacity,
            "observation_dim": self.observation_dim,
            "action_dim": self.action_dim,
            "pos": self.pos,
            "size": n,
            "observations": self.observations[:n].clone(),
            "next_observations": self.next_observations[:n].clone(),
            "actions": self.actions[:n].clone(),
            "rewards": self.rewards[:n].clone(),
            "terminated": self.terminated[:n].clone(),
            "horizons": self.horizons[:n].clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore rows saved by `state_dict`; capacity and sizes must match."""
        if int(state["capacity"]) != self.capacity:
            raise ValueError(
                f"checkpointed buffer holds {state['capacity']} rows, this one {self.capacity}"
            )
        if int(state["observation_dim"]) != self.observation_dim:
            raise ValueError("checkpointed buffer has a different observation size")
        if state.get("action_dim") != self.action_dim:
            raise ValueError("checkpointed buffer has different actions")
        n = int(state["size"])
        self.observations[:n] = state["observations"].cpu()
        self.next_observations[:n] = state["next_observations"].cpu()
        self.actions[:n] = state["actions"].cpu()
        self.rewards[:n] = state["rewards"].cpu()
        self.terminated[:n] = state["terminated"].cpu()
        if "horizons" in state:  # checkpoints from before n-step returns hold 1-step rows
            self.horizons[:n] = state["horizons"].cpu()
        else:
            self.horizons.fill_(1.0)
        self.size = n
        self.pos = int(state["pos"])


# -- n-step returns ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Transition:
    """One (possibly n-step) transition, as `ReplayBuffer.add` takes it."""

    observation: np.ndarray  # s_t
    action: int | np.ndarray  # a_t
    reward: float  # R_t^(h) = sum_{k<h} gamma^k r_{t+k}
    next_observation: np.ndarray  # s_{t+h}, the real one even at a time-limit cut
    terminated: bool  # s_{t+h} is terminal: no bootstrap
    horizon: int  # h: the bootstrap is discounted by gamma^h


class NStepWriter:
    """Folds one environment's steps into n-step transitions (Sutton 1988, "Learning to
    Predict by the Methods of Temporal Differences"; as in Rainbow, Hessel et al. 2018):

        R_t^(n) = sum_{k=0}^{n-1} gamma^k r_{t+k},   y_t = R_t^(n) + gamma^n max_a Q(s_{t+n}, a)

    A transition is written once its n steps are known. An episode's end cuts every pending
    one short: each gets the rewards up to the end and s' = the episode's last real next
    observation, with `horizon` the steps it spans; `terminated` means no bootstrap at all,
    a time-limit truncation still bootstraps from that s' with gamma^horizon (Pardo et al.
    2018). With n = 1 every step is written as it comes.
    """

    def __init__(self, n: int, gamma: float) -> None:
        if n < 1:
            raise ValueError("n must be at least 1")
        self.n = n
        self.gamma = gamma
        self._pending: deque[tuple[np.ndarray, int | np.ndarray, float]] = deque()

    def _written(self, start: int, next_observation: np.ndarray, terminated: bool) -> Transition:
        """The transition from pending step `start` to `next_observation`."""
        observation, action, _ = self._pending[start]
        rewards = [r for _, _, r in list(self._pending)[start:]]
        ret = sum(self.gamma**k * r for k, r in enumerate(rewards))
        return Transition(observation, action, ret, next_observation, terminated, len(rewards))

    def push(
        self,
        observation: np.ndarray,
        action: int | np.ndarray,
        reward: float,
        next_observation: np.ndarray,
        terminated: bool,
        truncated: bool,
    ) -> list[Transition]:
        """Add one step; returns the transitions it completes, oldest first."""
        self._pending.append((observation, action, float(reward)))
        if terminated or truncated:
            out = [
                self._written(i, next_observation, terminated) for i in range(len(self._pending))
            ]
            self._pending.clear()
            return out
        if len(self._pending) == self.n:
            out = [self._written(0, next_observation, False)]
            self._pending.popleft()
            return out
        return []

    def reset(self) -> None:
        """Drop the pending steps (the environment restarts without ending its episode)."""
        self._pending.clear()
