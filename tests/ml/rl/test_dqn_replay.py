"""DQN's replay: n-step transitions and targets, the sum-tree, prioritized sampling and its
importance-sampling weights, and the checkpoint of a prioritized buffer."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from ml.rl.dqn import DQNConfig, QNetwork, beta_at, td_update
from ml.rl.prioritized import PrioritizedReplayBuffer, SumTree
from ml.rl.replay import Batch, NStepWriter, ReplayBuffer


def obs(i: int) -> np.ndarray:
    return np.full(2, float(i), np.float32)


def push_episode(writer: NStepWriter, rewards: list[float], *, terminated: bool) -> list:
    """Steps s_t -> s_{t+1} with rewards[t]; the last one ends the episode."""
    out = []
    for t, reward in enumerate(rewards):
        last = t == len(rewards) - 1
        out += writer.push(
            obs(t), t, reward, obs(t + 1), last and terminated, last and not terminated
        )
    return out


# -- n-step returns ----------------------------------------------------------------------------
def test_n_step_returns_on_a_hand_made_episode() -> None:
    # gamma 0.5, n 3, rewards 1, 2, 3, 4, then s_4 is terminal.
    written = push_episode(NStepWriter(3, 0.5), [1.0, 2.0, 3.0, 4.0], terminated=True)
    got = [
        (
            float(t.observation[0]),
            t.action,
            t.reward,
            float(t.next_observation[0]),
            t.terminated,
            t.horizon,
        )
        for t in written
    ]
    assert got == [
        (0.0, 0, 1 + 0.5 * 2 + 0.25 * 3, 3.0, False, 3),  # a full window: bootstrap from s_3
        (1.0, 1, 2 + 0.5 * 3 + 0.25 * 4, 4.0, True, 3),  # the end cuts the rest short
        (2.0, 2, 3 + 0.5 * 4, 4.0, True, 2),
        (3.0, 3, 4.0, 4.0, True, 1),
    ]


def test_a_time_limit_cut_still_bootstraps_from_the_last_real_observation() -> None:
    written = push_episode(NStepWriter(3, 0.5), [1.0, 2.0, 3.0, 4.0], terminated=False)
    assert [t.terminated for t in written] == [False] * 4
    assert [t.horizon for t in written] == [3, 3, 2, 1]
    assert all(float(t.next_observation[0]) == 4.0 for t in written[1:])
    # The next episode starts afresh: nothing of the last one is pending.
    writer = NStepWriter(2, 0.5)
    push_episode(writer, [1.0, 1.0, 1.0], terminated=False)
    assert writer.push(obs(9), 0, 5.0, obs(10), False, False) == []


def test_one_step_writer_passes_steps_through() -> None:
    written = push_episode(NStepWriter(1, 0.99), [1.0, -1.0, 2.0], terminated=True)
    assert [(t.reward, t.horizon, t.terminated) for t in written] == [
        (1.0, 1, False),
        (-1.0, 1, False),
        (2.0, 1, True),
    ]
    with pytest.raises(ValueError):
        NStepWriter(0, 0.99)


def test_td_target_discounts_the_bootstrap_by_gamma_to_the_horizon() -> None:
    config = DQNConfig(n_step=3, gamma=0.5, hidden=[8])
    torch.manual_seed(0)
    q_network = QNetwork(2, 2, [8], "relu", dueling=False)
    target_network = QNetwork(2, 2, [8], "relu", dueling=False)
    batch = Batch(
        observations=torch.randn(3, 2),
        actions=torch.tensor([0, 1, 0]),
        rewards=torch.tensor([1.0, 2.0, 3.0]),
        next_observations=torch.randn(3, 2),
        terminated=torch.tensor([0.0, 0.0, 1.0]),
        horizons=torch.tensor([3.0, 1.0, 2.0]),
    )
    with torch.no_grad():
        q = q_network(batch.observations).gather(1, batch.actions[:, None])[:, 0]
        next_value = target_network(batch.next_observations).max(dim=1).values
    expected = torch.stack(
        [1.0 + 0.125 * next_value[0], 2.0 + 0.5 * next_value[1], torch.tensor(3.0)]
    )
    optimizer = torch.optim.SGD(q_network.parameters(), lr=0.0)
    _, errors = td_update(q_network, target_network, optimizer, batch, config)
    torch.testing.assert_close(errors, q - expected)


# -- the sum-tree ------------------------------------------------------------------------------
def test_sum_tree_finds_prefix_sums_and_follows_updates() -> None:
    tree = SumTree(5)  # 8 leaves, 3 of them never used
    tree.update(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]))
    assert tree.total == 10.0 and tree.leaves == 8
    u = np.array([0.0, 0.99, 1.0, 2.99, 3.0, 5.99, 6.0, 9.99])
    np.testing.assert_array_equal(tree.find(u, 4), [0, 0, 1, 1, 2, 2, 3, 3])
    tree.update(np.array([1, 1]), np.array([5.0, 0.0]))  # the last value of a slot wins
    tree.set(4, 2.0)
    assert tree.total == 10.0
    np.testing.assert_array_equal(
        tree.find(np.array([0.5, 1.5, 3.9, 8.1, 9.99]), 5), [0, 2, 2, 4, 4]
    )
    np.testing.assert_array_equal(tree.values(5), [1.0, 0.0, 3.0, 4.0, 2.0])
    assert tree.find(np.array([10.5]), 5)[0] == 4  # past the total: the last filled slot


def test_prioritized_sampling_follows_the_priorities() -> None:
    buffer = PrioritizedReplayBuffer(8, 1, alpha=1.0, epsilon=1e-9)
    for i in range(4):
        buffer.add(np.array([i]), 0, 0.0, np.array([i]), False)
    assert buffer.priorities.values(4).tolist() == [1.0] * 4  # new rows: the largest priority
    buffer.update_priorities(np.arange(4), np.array([1.0, -2.0, 3.0, 0.0]))  # |delta|
    rng = np.random.default_rng(0)
    counts = np.zeros(4)
    for _ in range(2_000):
        _, _, rows = buffer.sample_prioritized(16, 0.4, rng)
        counts += np.bincount(rows, minlength=4)
    np.testing.assert_allclose(counts / counts.sum(), [1 / 6, 2 / 6, 3 / 6, 0.0], atol=0.01)
    # A stratified draw takes one row from each of B equal slices of the total.
    _, _, rows = buffer.sample_prioritized(6, 0.4, rng)
    assert rows.tolist() == [0, 1, 1, 2, 2, 2]
    assert buffer.max_priority == pytest.approx(3.0)


def test_importance_sampling_weights() -> None:
    buffer = PrioritizedReplayBuffer(4, 1, alpha=0.5, epsilon=1e-9)
    for i in range(4):
        buffer.add(np.array([i]), 0, float(i), np.array([i]), False)
    buffer.update_priorities(np.arange(4), np.array([1.0, 4.0, 9.0, 16.0]))  # p^0.5 = 1..4
    batch, weights, rows = buffer.sample_prioritized(4, 0.5, np.random.default_rng(1))
    p = np.array([1.0, 2.0, 3.0, 4.0]) / 10.0  # P(i)
    w = (4 * p) ** -0.5
    np.testing.assert_allclose(weights.numpy(), w[rows] / w.max(), rtol=1e-6)
    assert batch.rewards.tolist() == rows.astype(float).tolist()  # rows and batch agree
    assert weights.max() <= 1.0
    config = DQNConfig(total_steps=1_000, priority_beta=0.4)
    assert beta_at(0, config) == 0.4 and beta_at(500, config) == pytest.approx(0.7)
    assert beta_at(1_000, config) == 1.0 and beta_at(5_000, config) == 1.0


def test_prioritized_buffer_checkpoint_loads_with_weights_only() -> None:
    buffer = PrioritizedReplayBuffer(6, 2, alpha=0.6)
    for i in range(9):
        buffer.add(obs(i), i % 2, float(i), obs(i + 1), i == 8, horizon=1 + i % 3)
    buffer.update_priorities(np.array([0, 3]), np.array([5.0, 0.1]))
    raw = io.BytesIO()
    torch.save(buffer.state_dict(), raw)
    raw.seek(0)
    state = torch.load(raw, weights_only=True)
    restored = PrioritizedReplayBuffer(6, 2, alpha=0.6)
    restored.load_state_dict(state)
    assert restored.priorities.total == pytest.approx(buffer.priorities.total)
    np.testing.assert_array_equal(restored.priorities.tree, buffer.priorities.tree)
    assert restored.max_priority == buffer.max_priority
    assert torch.equal(restored.horizons, buffer.horizons)
    a = buffer.sample_prioritized(5, 0.5, np.random.default_rng(3))
    b = restored.sample_prioritized(5, 0.5, np.random.default_rng(3))
    assert torch.equal(a[0].observations, b[0].observations) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="priorities"):
        PrioritizedReplayBuffer(6, 2).load_state_dict(ReplayBuffer(6, 2).state_dict())


def test_uniform_buffer_keeps_horizons_and_reads_old_checkpoints() -> None:
    buffer = ReplayBuffer(4, 2)
    buffer.add(obs(0), 1, 1.0, obs(1), False, horizon=3)
    assert buffer.sample(2, np.random.default_rng(0)).horizons is not None
    state = buffer.state_dict()
    assert state["horizons"].tolist() == [3.0]
    del state["horizons"]  # a checkpoint from before n-step returns
    restored = ReplayBuffer(4, 2)
    restored.load_state_dict(state)
    assert restored.horizons.tolist() == [1.0] * 4 and math.isclose(restored.rewards[0], 1.0)
