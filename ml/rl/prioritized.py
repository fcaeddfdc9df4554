"""Prioritized experience replay, proportional variant (Schaul, Quan, Antonoglou and Silver
2016, "Prioritized Experience Replay").

Transition i is replayed with probability P(i) = p_i^alpha / sum_k p_k^alpha, where
p_i = |delta_i| + epsilon is its last absolute TD error (Section 3.3); a new transition gets
the largest priority seen so far, so it is replayed at least once. Sampling this way biases
the updates towards surprising transitions, which importance-sampling weights
w_i = (N P(i))^-beta / max_k w_k correct (Section 3.4), beta annealed to 1 by the end of
training, where the bias matters most.

The priorities live in a sum-tree: a complete binary tree whose leaves hold p_i^alpha and
whose inner nodes hold the sums of their children, so drawing a transition in proportion to
its priority and changing a priority both take O(log N). The tree is a flat NumPy array
(node k has children 2k and 2k + 1, the root is node 1, leaves start at `leaves`), and every
operation works on a whole batch at once, one level of the tree per NumPy call. A batch is
drawn stratified, as in the paper's Appendix B.2.1: the total is cut into B equal segments
and one transition is drawn from each.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ml.rl.replay import Batch, ReplayBuffer


class SumTree:
    """Non-negative values over `capacity` slots, with their sum and prefix-sum search."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self.leaves = 1 << max(capacity - 1, 0).bit_length()  # a power of two >= capacity
        self.tree = np.zeros(2 * self.leaves, dtype=np.float64)  # tree[node]; tree[1] = sum

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def values(self, n: int | None = None) -> np.ndarray:
        """The values of the first `n` slots (all by default), [n]; a view."""
        return self.tree[self.leaves : self.leaves + (self.capacity if n is None else n)]

    def update(self, slots: np.ndarray, values: np.ndarray) -> None:
        """Set slots [k] to values [k] (the last wins for a repeated slot) and the sums above."""
        nodes = np.asarray(slots, dtype=np.int64) + self.leaves
        self.tree[nodes] = values
        nodes = np.unique(nodes // 2)
        while nodes[0] >= 1:  # one level per pass, from the leaves' parents to the root
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            nodes = np.unique(nodes // 2)

    def set(self, slot: int, value: float) -> None:
        """`update` of a single slot, without NumPy's per-call cost at every level."""
        node = slot + self.leaves
        tree = self.tree
        tree[node] = value
        node //= 2
        while node >= 1:
            tree[node] = tree[2 * node] + tree[2 * node + 1]
            node //= 2

    def rebuild(self) -> None:
        """Recompute every inner node from the leaves."""
        size = self.leaves
        while size > 1:
            parents = np.arange(size // 2, size)
            self.tree[parents] = self.tree[2 * parents] + self.tree[2 * parents + 1]
            size //= 2

    def find(self, prefix_sums: np.ndarray, n: int) -> np.ndarray:
        """For each u [k] in [0, total), the slot i whose cumulative range holds it:
        sum_{j<i} v_j <= u < sum_{j<=i} v_j; slots at or past `n` are never returned."""
        u = np.asarray(prefix_sums, dtype=np.float64).copy()
        nodes = np.ones(len(u), dtype=np.int64)
        while nodes[0] < self.leaves:  # every node is at the same depth
            left = self.tree[2 * nodes]
            right = u >= left
            u -= left * right
            nodes = 2 * nodes + right
        # Rounding may carry a draw at the very end into an empty slot: take the last full one.
        return np.minimum(nodes - self.leaves, n - 1)


class PrioritizedReplayBuffer(ReplayBuffer):
    """`ReplayBuffer` with proportional priorities: `sample_prioritized` draws by priority and
    returns importance-sampling weights; `update_priorities` feeds back |TD errors|."""

    def __init__(
        self,
        capacity: int,
        observation_dim: int,
        action_dim: int | None = None,
        *,
        alpha: float = 0.6,
        epsilon: float = 1e-6,
    ) -> None:
        super().__init__(capacity, observation_dim, action_dim)
        self.alpha = alpha
        self.epsilon = epsilon
        self.priorities = SumTree(capacity)  # leaves: p_i^alpha
        self.max_priority = 1.0  # largest p_i^alpha so far: what a new transition gets

    def add(
        self,
        observation: np.ndarray,
        action: int | np.ndarray,
        reward: float,
        next_observation: np.ndarray,
        terminated: bool,
        horizon: int = 1,
    ) -> int:
        row = super().add(observation, action, reward, next_observation, terminated, horizon)
        self.priorities.set(row, self.max_priority)
        return row

    def sample_prioritized(
        self,
        batch_size: int,
        beta: float,
        rng: np.random.Generator,
        device: torch.device | str = "cpu",
    ) -> tuple[Batch, torch.Tensor, np.ndarray]:
        """A stratified draw of `batch_size` rows in proportion to their priorities: the
        batch, its importance-sampling weights [B] (on `device`, largest possible 1) and the
        rows [B], for `update_priorities`."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        total = self.priorities.total
        # u[k] uniform in the k-th of B equal segments of [0, total).
        u = (np.arange(batch_size) + rng.random(batch_size)) * (total / batch_size)
        rows = self.priorities.find(u, self.size)
        stored = self.priorities.values(self.size)  # p^alpha [N]
        probabilities = stored[rows] / total  # P(i) [B]
        # w_i = (N P(i))^-beta, divided by the largest any stored row could get (the rarest).
        weights = (self.size * probabilities) ** -beta
        weights /= (self.size * stored.min() / total) ** -beta
        batch = self.gather(rows, device)
        return batch, torch.as_tensor(weights, dtype=torch.float32, device=device), rows

    def update_priorities(self, rows: np.ndarray, td_errors: np.ndarray) -> None:
        """p_i = |delta_i| + epsilon for the replayed rows [B]; the tree stores p_i^alpha."""
        values = (np.abs(td_errors).astype(np.float64) + self.epsilon) ** self.alpha
        self.priorities.update(rows, values)
        self.max_priority = max(self.max_priority, float(values.max()))

    # -- checkpointing -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["priorities"] = torch.from_numpy(self.priorities.values(self.size).copy())
        state["max_priority"] = self.max_priority
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "priorities" not in state:
            raise ValueError("the checkpointed buffer has no priorities")
        self.priorities.tree[:] = 0.0
        self.priorities.values(self.size)[:] = state["priorities"].cpu().numpy()
        self.priorities.rebuild()
        self.max_priority = float(state["max_priority"])
