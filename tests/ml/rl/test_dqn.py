"""DQN: it solves CartPole-v1; its options, schedule and model. Also the shared RL pieces
(`ml.rl.envs`, `ml.rl.replay`), with discrete and continuous (Box) actions.

Save/load, determinism, stop/resume and config rejection are checked for every algorithm in
tests/ml/test_algorithms.py.
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from ml.core.errors import ConfigError
from ml.core.hooks import NullHooks, RecordingHooks
from ml.rl.dqn import ALGORITHM, DQNConfig, DQNModel, QNetwork, epsilon_at, train
from ml.rl.envs import CONTINUOUS_ENV_IDS, DISCRETE_ENV_IDS, ENV_IDS, env_spaces, evaluate, make_env
from ml.rl.replay import ReplayBuffer
from tests.tiny_configs import TINY_CONFIGS

CARTPOLE_OBS = np.array(
    [[0.0, 0.0, 0.0, 0.0], [0.01, -0.2, 0.03, 0.3], [-0.05, 0.4, -0.1, -0.6]], np.float32
)


def tiny(**overrides: Any) -> DQNConfig:
    return DQNConfig(**{**TINY_CONFIGS["dqn"], **overrides})


@pytest.fixture(scope="module")
def small_model() -> DQNModel:
    return train(tiny(total_steps=150), seed=0, hooks=NullHooks())


# -- learning ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_solves_cartpole_within_50k_steps() -> None:
    # The defaults (rl-zoo's CartPole hyper-parameters), stopping at the first evaluation that
    # balances the pole for all 500 steps; the returned network is the best-evaluated one.
    config = DQNConfig(total_steps=50_000, eval_interval=1_000, target_return=500.0)
    hooks = RecordingHooks()
    model = train(config, seed=0, hooks=hooks)

    assert model.metadata["summary"]["steps"] <= 50_000
    # Judge on 20 fresh episodes, none of them seen by the evaluations during training.
    returns = model.evaluate_policy(episodes=20, seed=10_000)
    assert np.mean(returns) >= 195.0, returns
    # The training signals were reported along the way.
    for name in ("losses/td", "charts/epsilon", "charts/episodic_return", "eval/return"):
        assert hooks.metrics[name], name
    assert {"rl/q_mean", "rl/q_max_abs"} <= set(hooks.metrics)
    assert hooks.metrics["charts/epsilon"][0][1] > hooks.metrics["charts/epsilon"][-1][1]
    assert not hooks.warnings


# -- the loop ----------------------------------------------------------------------------------
def test_checkpoints_do_not_alias_live_weights() -> None:
    hooks = RecordingHooks()
    train(tiny(), seed=0, hooks=hooks)
    assert [c["step"] for c in hooks.checkpoints] == [200, 400]
    first, second = hooks.checkpoints
    weights = first["q_network"]
    assert any(not torch.equal(weights[k], second["q_network"][k]) for k in weights)
    assert first["buffer"]["size"] == 200 and first["buffer"]["observations"].shape == (200, 4)
    assert first["values"]["episodes"] > 0


@pytest.mark.parametrize(
    ("double_dqn", "dueling", "tau"), [(True, False, 1.0), (False, True, 1.0), (True, True, 0.1)]
)
def test_double_and_dueling_options_run(double_dqn: bool, dueling: bool, tau: float) -> None:
    config = tiny(double_dqn=double_dqn, dueling=dueling, tau=tau, activation="tanh")
    model = train(config, seed=0, hooks=NullHooks())
    q = model.q_function(CARTPOLE_OBS)
    assert q.shape == (3, 2) and np.isfinite(q).all()
    assert (model.q_network.value is not None) == dueling


def test_dueling_head_follows_eq_9() -> None:
    model = train(tiny(total_steps=150, dueling=True), seed=0, hooks=NullHooks())
    net = cast(QNetwork, model.q_network)
    assert net.value is not None and net.advantage is not None
    x = torch.from_numpy(CARTPOLE_OBS)
    with torch.no_grad():
        features = net.body(x)
        advantages = net.advantage(features)
        expected = net.value(features) + advantages - advantages.mean(dim=1, keepdim=True)
        assert torch.allclose(net(x), expected)


def test_epsilon_schedule_and_other_environments() -> None:
    config = DQNConfig(total_steps=1_000, exploration_fraction=0.5)
    assert epsilon_at(0, config) == 1.0
    assert math.isclose(epsilon_at(250, config), 0.52)
    assert math.isclose(epsilon_at(900, config), 0.04)
    model = train(tiny(env_id="Acrobot-v1", total_steps=200), seed=0, hooks=NullHooks())
    assert model.shapes == {"observation_dim": 6, "n_actions": 3, "env_id": "Acrobot-v1"}
    assert model.q_function(np.zeros((1, 6), np.float32)).shape == (1, 3)


def test_config_is_specific_to_discrete_actions() -> None:
    for env_id in (*CONTINUOUS_ENV_IDS, "Pong-v5"):
        with pytest.raises(ValidationError):
            DQNConfig(env_id=env_id)
    assert ALGORITHM.name == "dqn" and ALGORITHM.queue == "gpu" and ALGORITHM.family == "rl"
    assert not ALGORITHM.exact_resume


# -- the model ---------------------------------------------------------------------------------
def test_model_exposes_its_q_function(small_model: DQNModel) -> None:
    assert small_model.observation_dim == 4 and small_model.n_actions == 2
    assert small_model.env_id == "CartPole-v1"
    q = small_model.q_function(CARTPOLE_OBS)
    assert q.shape == (3, 2) and q.dtype == np.float32
    with torch.no_grad():
        expected = small_model.q_network(torch.from_numpy(CARTPOLE_OBS)).numpy()
    np.testing.assert_array_equal(q, expected)
    huge = small_model.q_function(np.full((1, 4), 3e38, np.float32))  # no crash, maybe inf
    assert huge.shape == (1, 2)


def test_evaluate_policy_plays_the_greedy_policy(small_model: DQNModel) -> None:
    returns = small_model.evaluate_policy(3, seed=5)
    assert len(returns) == 3 and returns == small_model.evaluate_policy(3, seed=5)

    def greedy(obs: np.ndarray) -> np.ndarray:
        return small_model.q_function(obs).argmax(axis=1)

    assert returns == evaluate(greedy, "CartPole-v1", 3, 5)


# -- shared pieces: environments and the replay buffer -------------------------------------------
def test_env_spaces_and_factory() -> None:
    assert DISCRETE_ENV_IDS == ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "CarOnHill-v0")
    assert CONTINUOUS_ENV_IDS == ("Pendulum-v1", "MountainCarContinuous-v0")
    assert ENV_IDS == DISCRETE_ENV_IDS + CONTINUOUS_ENV_IDS
    cartpole = env_spaces("CartPole-v1")
    assert (cartpole.observation_dim, cartpole.n_actions, cartpole.discrete) == (4, 2, True)
    assert cartpole.max_episode_steps == 500 and cartpole.action_dim == 0
    assert (env_spaces("Acrobot-v1").observation_dim, env_spaces("Acrobot-v1").n_actions) == (6, 3)
    pendulum = env_spaces("Pendulum-v1")
    assert not pendulum.discrete and pendulum.observation_dim == 3 and pendulum.action_dim == 1
    assert pendulum.action_low == (-2.0,) and pendulum.action_high == (2.0,)
    car = env_spaces("MountainCarContinuous-v0")
    assert (car.observation_dim, car.action_dim, car.max_episode_steps) == (2, 1, 999)
    with pytest.raises(ConfigError):
        make_env("ALE/Pong-v5")


def test_evaluate_is_seeded_and_batched() -> None:
    calls: list[int] = []

    def always_left(obs: np.ndarray) -> np.ndarray:
        calls.append(len(obs))
        return np.zeros(len(obs), dtype=np.int64)

    first = evaluate(always_left, "CartPole-v1", episodes=5, seed=7)
    assert first == evaluate(always_left, "CartPole-v1", episodes=5, seed=7)
    assert len(first) == 5 and all(5 <= r < 30 for r in first)
    assert calls[0] == 5 and len(calls) <= 2 * 30  # one call per time step, not per episode
    mountain = evaluate(always_left, "MountainCar-v0", episodes=2, seed=0)
    assert mountain == [-200.0, -200.0]  # never reaches the flag: the time limit ends it


def test_evaluate_continuous_actions() -> None:
    seen: list[tuple[int, ...]] = []

    def no_torque(obs: np.ndarray) -> np.ndarray:
        seen.append(obs.shape)
        return np.zeros((len(obs), 1), np.float32)

    returns = evaluate(no_torque, "Pendulum-v1", episodes=2, seed=3)
    assert returns == evaluate(no_torque, "Pendulum-v1", episodes=2, seed=3)
    assert len(seen) == 2 * 200 and seen[0] == (2, 3)  # 200 steps, both episodes side by side
    assert all(-200 * 16.3 <= r <= 0.0 for r in returns)
    # Out-of-range actions are clipped to the box, as the environment's physics does.
    too_strong = evaluate(lambda o: np.full((len(o), 1), 100.0), "Pendulum-v1", 1, 3)
    assert too_strong == evaluate(lambda o: np.full((len(o), 1), 2.0), "Pendulum-v1", 1, 3)
    still = evaluate(lambda o: np.zeros(len(o)), "MountainCarContinuous-v0", 1, 0)
    assert still == [0.0]  # no force, no cost, no goal: 999 steps of nothing
    with pytest.raises(ValueError, match="actions"):
        evaluate(lambda o: np.zeros((len(o), 2)), "Pendulum-v1", 1, 0)


def test_replay_buffer_wraps_and_round_trips() -> None:
    buffer = ReplayBuffer(capacity=4, observation_dim=2)
    for i in range(6):
        buffer.add(np.array([i, i], np.float32), i % 2, float(i), np.array([i + 1] * 2), i == 5)
    assert len(buffer) == 4 and buffer.pos == 2
    assert sorted(buffer.rewards.tolist()) == [2.0, 3.0, 4.0, 5.0]  # the oldest two are gone

    restored = ReplayBuffer(capacity=4, observation_dim=2)
    restored.load_state_dict(buffer.state_dict())
    assert restored.pos == 2 and len(restored) == 4
    assert torch.equal(restored.observations, buffer.observations)
    batch_a = buffer.sample(8, np.random.default_rng(0))
    batch_b = restored.sample(8, np.random.default_rng(0))
    assert torch.equal(batch_a.next_observations, batch_b.next_observations)
    assert batch_a.actions.dtype == torch.int64 and batch_a.rewards.shape == (8,)
    with pytest.raises(ValueError):
        ReplayBuffer(capacity=8, observation_dim=2).load_state_dict(buffer.state_dict())


def test_replay_buffer_with_continuous_actions() -> None:
    buffer = ReplayBuffer.for_env(10, env_spaces("Pendulum-v1"))
    assert buffer.action_dim == 1 and buffer.observation_dim == 3
    for i in range(3):
        action = np.array([0.5 * i], np.float32)
        buffer.add(np.full(3, i, np.float32), action, -float(i), np.full(3, i + 1), False)
    batch = buffer.sample(5, np.random.default_rng(0))
    assert batch.actions.shape == (5, 1) and batch.actions.dtype == torch.float32
    assert set(batch.actions[:, 0].tolist()) <= {0.0, 0.5, 1.0}
    restored = ReplayBuffer(10, 3, action_dim=1)
    restored.load_state_dict(buffer.state_dict())
    assert torch.equal(restored.actions, buffer.actions)
    with pytest.raises(ValueError, match="actions"):
        ReplayBuffer(10, 3).load_state_dict(buffer.state_dict())
    with pytest.raises(ValueError):
        ReplayBuffer(10, 3, action_dim=0)
