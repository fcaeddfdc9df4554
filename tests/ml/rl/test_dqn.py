"""DQN: it solves CartPole-v1, is reproducible, saves, resumes, and rejects bad queries.

Also covers the shared pieces DQN introduced: `ml.rl.envs` and `ml.rl.replay`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from ml.core.errors import ConfigError, QueryError, TrainingStopped
from ml.core.hooks import NullHooks, RecordingHooks
from ml.core.model import load
from ml.rl.dqn import ALGORITHM, DQNConfig, DQNModel, epsilon_at, train
from ml.rl.envs import ENV_IDS, env_spaces, evaluate, make_env
from ml.rl.replay import ReplayBuffer

CARTPOLE_OBS = [[0.0, 0.0, 0.0, 0.0], [0.01, -0.2, 0.03, 0.3], [-0.05, 0.4, -0.1, -0.6]]

# A budget of a few hundred steps: enough to exercise every branch of the loop quickly.
TINY = {
    "total_steps": 600,
    "learning_starts": 100,
    "train_frequency": 50,
    "gradient_steps": 4,
    "batch_size": 32,
    "buffer_size": 1_000,
    "hidden": [32, 32],
    "eval_interval": 300,
    "eval_episodes": 2,
    "checkpoint_interval": 200,
}


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Batches of 64 rows gain nothing from intra-op threads on CPU; on a busy 2-core machine
    the threads only wait for each other (about 5x slower), so these tests use one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(**overrides: Any) -> DQNConfig:
    return DQNConfig(**{**TINY, **overrides})


def greedy_returns(model: DQNModel, episodes: int, seed: int) -> list[float]:
    """Fresh greedy episodes, through the model's public `actions` query."""
    env_id = model.metadata["shapes"]["env_id"]
    return evaluate(lambda obs: model.actions(obs.tolist()), env_id, episodes, seed)


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
    returns = greedy_returns(model, episodes=20, seed=10_000)
    assert np.mean(returns) >= 195.0, returns
    # The training signals were reported along the way.
    for name in ("losses/td", "charts/epsilon", "charts/episodic_return", "eval/return"):
        assert hooks.metrics[name], name
    assert hooks.metrics["charts/epsilon"][0][1] > hooks.metrics["charts/epsilon"][-1][1]


# -- reproducibility, persistence, resumption --------------------------------------------------
def test_same_seed_same_q_values() -> None:
    first = train(tiny(), seed=3, hooks=NullHooks())
    second = train(tiny(), seed=3, hooks=NullHooks())
    other = train(tiny(), seed=4, hooks=NullHooks())
    q1 = first.q_values(observations=CARTPOLE_OBS)
    assert q1 == second.q_values(observations=CARTPOLE_OBS)
    assert q1 != other.q_values(observations=CARTPOLE_OBS)
    assert first.metadata["summary"] == second.metadata["summary"]


def test_save_load_round_trip(tmp_path: Any) -> None:
    model = train(tiny(total_steps=300), seed=0, hooks=NullHooks())
    model.save(tmp_path / "m.pt")
    loaded = load(tmp_path / "m.pt")
    assert isinstance(loaded, DQNModel)
    assert loaded.metadata == model.metadata
    assert loaded.q_values(observations=CARTPOLE_OBS) == model.q_values(observations=CARTPOLE_OBS)
    assert loaded.actions(CARTPOLE_OBS) == model.actions(CARTPOLE_OBS)


def test_resume_continues_from_the_checkpoint_step() -> None:
    config = tiny()
    hooks = RecordingHooks(stop_after_checkpoints=1)
    with pytest.raises(TrainingStopped) as stopped:
        train(config, seed=1, hooks=hooks)
    assert stopped.value.step == 200
    assert len(hooks.checkpoints) == 1  # no duplicate checkpoint of the same step

    # The checkpoint is made only of safe types: it survives a weights_only round trip.
    buffer = io.BytesIO()
    torch.save(hooks.checkpoints[-1], buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["step"] == 200
    assert state["buffer"]["size"] == 200
    assert state["buffer"]["observations"].shape == (200, 4)

    resumed_hooks = RecordingHooks()
    model = train(config, seed=1, hooks=resumed_hooks, resume=state)
    steps = [step for step, _ in resumed_hooks.progress]
    assert steps[0] == 200 and steps[-1] == config.total_steps
    assert model.metadata["summary"]["steps"] == config.total_steps
    # Learning started before the stop; the resumed run reports TD losses only after it.
    assert min(step for step, _ in resumed_hooks.metrics["losses/td"]) > 200
    assert np.isfinite(model.q_values(observations=CARTPOLE_OBS)["q_values"]).all()


def test_checkpoints_do_not_alias_live_weights() -> None:
    hooks = RecordingHooks()
    train(tiny(), seed=0, hooks=hooks)
    assert [c["step"] for c in hooks.checkpoints] == [200, 400]
    first, second = hooks.checkpoints
    assert any(not torch.equal(first["q_net"][k], second["q_net"][k]) for k in first["q_net"])


# -- options -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("double_dqn", "dueling", "tau"), [(True, False, 1.0), (False, True, 1.0), (True, True, 0.1)]
)
def test_double_and_dueling_options_run(double_dqn: bool, dueling: bool, tau: float) -> None:
    config = tiny(double_dqn=double_dqn, dueling=dueling, tau=tau, activation="tanh")
    model = train(config, seed=0, hooks=NullHooks())
    answer = model.q_values(observations=CARTPOLE_OBS)
    assert np.array(answer["q_values"]).shape == (3, 2)
    assert np.isfinite(answer["q_values"]).all()
    assert (model.q_net.value is not None) == dueling


def test_dueling_head_follows_eq_9() -> None:
    model = train(tiny(total_steps=150, dueling=True), seed=0, hooks=NullHooks())
    net = model.q_net
    x = torch.tensor(CARTPOLE_OBS)
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
    assert len(model.actions([[0.0] * 6])) == 1


# -- queries -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_model() -> DQNModel:
    return train(DQNConfig(**{**TINY, "total_steps": 150}), seed=0, hooks=NullHooks())


def test_q_values_answer_plain_python(small_model: DQNModel) -> None:
    answer = small_model.q_values(observations=CARTPOLE_OBS)
    assert set(answer) == {"q_values", "actions"}
    assert all(isinstance(v, float) for row in answer["q_values"] for v in row)
    assert all(isinstance(a, int) and 0 <= a < 2 for a in answer["actions"])
    assert answer["actions"] == [int(np.argmax(row)) for row in answer["q_values"]]
    assert small_model.metadata["shapes"] == {
        "observation_dim": 4,
        "n_actions": 2,
        "env_id": "CartPole-v1",
    }


@pytest.mark.parametrize(
    "observations",
    [
        [[0.0, 0.0, 0.0]],  # too short
        [[0.0, 0.0, 0.0, 0.0, 0.0]],  # too long
        [[0.0, float("nan"), 0.0, 0.0]],
        [[0.0, float("inf"), 0.0, 0.0]],
        [["a", "b", "c", "d"]],
        [[0.0, True, 0.0, 0.0]],
        [],
        None,
        "0,0,0,0",
        [0.0, 0.0, 0.0, 0.0],  # one observation, not a batch
        [[3.5e38, 0.0, 0.0, 0.0]],  # finite, but not a float32
    ],
)
def test_bad_observations_raise_query_error(small_model: DQNModel, observations: Any) -> None:
    with pytest.raises(QueryError):
        small_model.q_values(observations=observations)
    with pytest.raises(QueryError):
        small_model.actions(observations)


def test_overflowing_q_values_raise_query_error() -> None:
    # Finite float32 inputs can still overflow a network to inf or NaN, which JSON cannot carry.
    model = train(tiny(total_steps=150), seed=0, hooks=NullHooks())
    with torch.no_grad():
        model.q_net.body[0].weight.fill_(1e30)
    with pytest.raises(QueryError, match="overflow"):
        model.q_values(observations=[[1e10, 1e10, 1e10, 1e10]])


def test_states_are_refused_with_a_helpful_message(small_model: DQNModel) -> None:
    with pytest.raises(QueryError, match=r"observations.*4 numbers") as error:
        small_model.q_values(states=[0, 1])
    assert error.value.field == "states"


# -- config ------------------------------------------------------------------------------------
def test_config_rejects_unknown_fields_and_out_of_range_values() -> None:
    with pytest.raises(ValidationError):
        DQNConfig(learning_rat=1e-3)
    with pytest.raises(ValidationError):
        DQNConfig(total_steps=3_000_000)
    with pytest.raises(ValidationError):
        DQNConfig(env_id="Pong-v5")
    with pytest.raises(ValidationError):
        DQNConfig(hidden=[])
    assert ALGORITHM.name == "dqn" and ALGORITHM.queue == "gpu" and ALGORITHM.family == "rl"
    assert ALGORITHM.queries == ("q-values", "actions")


# -- shared pieces: environments and the replay buffer -------------------------------------------
def test_env_spaces_and_factory() -> None:
    assert ENV_IDS == ("CartPole-v1", "Acrobot-v1", "MountainCar-v0")
    assert env_spaces("CartPole-v1") == (4, 2)
    assert env_spaces("Acrobot-v1") == (6, 3)
    assert env_spaces("MountainCar-v0") == (2, 3)
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
