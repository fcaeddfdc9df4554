"""DQN: it solves CartPole-v1; its options, schedule and model. Also the shared RL pieces
(`ml.rl.envs`, `ml.rl.replay`), with discrete and continuous (Box) actions.

Save/load, determinism, stop/resume and config rejection are checked for every algorithm in
tests/ml/test_algorithms.py.
"""

from __future__ import annotations

import io
import math
from typing import Any, cast

import numpy as np
import pytest
import torch
from pydantic import ValidationError

import ml.rl.dqn
from ml.core.errors import ConfigError, TrainingStopped
from ml.core.health import HealthCheck, Suspicion
from ml.core.hooks import NullHooks, RecordingHooks
from ml.rl.dqn import (
    ALGORITHM,
    DQNConfig,
    DQNModel,
    QNetwork,
    epsilon_at,
    train,
)
from ml.rl.envs import CONTINUOUS_ENV_IDS, DISCRETE_ENV_IDS, ENV_IDS, env_spaces, evaluate, make_env
from ml.rl.health import ReturnRange, returns_collapse
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


# Learning within budgets (CartPole-v1, Acrobot-v1, the pixel grid world) is checked in
# tests/ml/rl/test_dqn_learning.py and tests/ml/rl/test_dqn_envs.py.


# -- the loop ----------------------------------------------------------------------------------
def test_checkpoints_do_not_alias_live_weights() -> None:
    hooks = RecordingHooks()
    train(tiny(), seed=0, hooks=hooks)
    assert [c["step"] for c in hooks.checkpoints] == [200, 400, 600]  # 600: the final state
    first, second, _ = hooks.checkpoints
    weights = first["q_network"]
    assert any(not torch.equal(weights[k], second["q_network"][k]) for k in weights)
    # n-step returns: each of the 4 environments holds back up to n - 1 = 4 unfinished steps.
    size = first["buffer"]["size"]
    assert 200 - 4 * 4 <= size <= 200 and first["buffer"]["observations"].shape == (size, 4)
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


@pytest.mark.parametrize(
    "options",
    [
        {"n_step": 3},
        {"prioritized_replay": True, "n_step": 2, "double_dqn": True},
        {"n_envs": 3, "prioritized_replay": True},
        {"env": "PixelGridWorld-v0", "network": "conv", "conv_channels": [4], "n_envs": 2},
    ],
)
def test_options_checkpoint_and_resume(options: dict[str, Any]) -> None:
    hooks = RecordingHooks(stop_after_checkpoints=1)
    with pytest.raises(TrainingStopped):
        train(tiny(**options), seed=1, hooks=hooks)
    (checkpoint,) = hooks.checkpoints
    assert checkpoint["step"] == 200  # counted in environment steps, whatever n_envs
    raw = io.BytesIO()
    torch.save(checkpoint, raw)
    raw.seek(0)
    restored = torch.load(raw, weights_only=True)
    if options.get("prioritized_replay"):
        assert restored["buffer"]["priorities"].shape == (restored["buffer"]["size"],)
    resumed_hooks = RecordingHooks()
    model = train(tiny(**options), seed=1, hooks=resumed_hooks, resume=restored)
    assert model.metadata["summary"]["steps"] == 600
    assert [step for step, _ in resumed_hooks.metrics["eval/return"]] == [300, 600]
    again = train(tiny(**options), seed=1, hooks=NullHooks(), resume=restored)
    for name, tensor in model.state()["q_net"].items():
        assert torch.equal(tensor, again.state()["q_net"][name])
    n = 50 if options.get("network") == "conv" else 4
    assert model.q_function(np.zeros((2, n), np.float32)).shape[0] == 2


def test_config_rejects_what_cannot_work() -> None:
    bad: list[dict[str, Any]] = [
        {"network": "conv"},  # CartPole's observations are vectors
        {"n_step": 0},
        {"n_step": 21},
        {"n_envs": 0},
        {"n_envs": 65},
        {"priority_alpha": 1.5},
        {"priority_beta": -0.1},
        {"priority_epsilon": 0.0},
        {"conv_channels": []},
        {"conv_channels": [512]},
        {"stop_on": ["mode_collapse"]},
        {"env": "PixelGridWorld-v1"},
    ]
    for fields in bad:
        with pytest.raises(ValidationError):
            DQNConfig(**fields)
    config = DQNConfig(env="PixelGridWorld-v0", network="conv", stop_on=["returns_collapse"])
    assert config.n_step == 5 and not config.prioritized_replay and config.n_envs == 4
    assert DQNConfig(env="PixelGridWorld-v0").network == "mlp"  # flattened pixels work too


# -- health ------------------------------------------------------------------------------------
def test_returns_collapse_needs_three_evaluations_far_below_the_best() -> None:
    returns = ReturnRange()
    hooks = RecordingHooks()
    suspicion = returns_collapse(returns, remedy="retrain")
    check = HealthCheck(hooks, [suspicion], stop_on=["returns_collapse"])
    # CartPole-like: from 20 up to 500, then down; below 260 (half the progress) counts.
    for step, value in enumerate([20.0, 300.0, 500.0, 200.0, 480.0, 250.0, 100.0, 30.0, 40.0]):
        returns.offer(value)
        check.check(step, {"eval/return": value})
    assert hooks.warnings == [(7, "returns_collapse", hooks.warnings[0][2])]
    assert check.stop_reason is not None and check.stop_reason.step == 7
    # Never before any progress: a run that stayed flat has nothing to lose.
    flat = ReturnRange()
    for value in (-200.0, -200.0, -200.0):
        flat.offer(value)
        assert not flat.collapsed(value, 0.5)
    restored = ReturnRange()
    restored.load_state_dict(returns.state_dict())
    assert (restored.first, restored.best) == (20.0, 500.0)


def test_stop_on_ends_the_run_with_the_best_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def always(returns: ReturnRange, **_: Any) -> Suspicion:
        return Suspicion("returns_collapse", "test", "eval/return", lambda v: True, patience=1)

    monkeypatch.setattr(ml.rl.health, "returns_collapse", always)
    hooks = RecordingHooks()
    model = train(tiny(stop_on=["returns_collapse"]), seed=0, hooks=hooks)
    codes = [code for _, code, _ in hooks.warnings]
    assert codes == ["returns_collapse", "stopped_early"]
    summary = model.metadata["summary"]
    assert summary["steps"] == 300 and summary["stopped_early"]
    assert summary["ended_on"] == {"step": 300, "code": "returns_collapse"}
    warned = RecordingHooks()
    train(tiny(), seed=0, hooks=warned)  # not in stop_on: a warning only
    assert [code for _, code, _ in warned.warnings] == ["returns_collapse"]  # once per streak


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
    # Car on the hill (ml.rl.car_on_hill) joins the three classic-control discrete tasks.
    assert DISCRETE_ENV_IDS[:3] == ("CartPole-v1", "Acrobot-v1", "MountainCar-v0")
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
