"""TD3 and DDPG: they learn Pendulum-v1; TD3's corrections (twin-min target, target policy
smoothing, delayed actor updates) do what the paper says; the model's actions and critic values.

Save/load, determinism, stop/resume and config rejection are checked for every algorithm in
tests/ml/test_algorithms.py.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from ml.core.algorithm import Algorithm
from ml.core.errors import QueryError
from ml.core.health import Suspicion
from ml.core.hooks import NullHooks, RecordingHooks
from ml.core.optim import adam
from ml.core.seeding import seeded_torch
from ml.queries import get_query, queries_for
from ml.rl import ddpg, health, td3
from ml.rl.ddpg import DDPGConfig, DDPGModel
from ml.rl.envs import env_spaces
from ml.rl.replay import Batch, ReplayBuffer
from ml.rl.td3 import (
    ActionScale,
    Learner,
    TD3Config,
    TD3Model,
    critic_values_explode,
    make_actor,
    make_critics,
    smoothed_target_actions,
    td_target,
    update,
)
from tests.tiny_configs import TINY_CONFIGS

PENDULUM_OBS = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, -2.0], [-1.0, 0.0, 8.0]], np.float32)
RANDOM_RETURN = -1_200.0  # about what uniformly random torques score on Pendulum-v1


def tiny(**overrides: Any) -> TD3Config:
    return TD3Config(**{**TINY_CONFIGS["td3"], **overrides})


def tiny_ddpg(**overrides: Any) -> DDPGConfig:
    return DDPGConfig(**{**TINY_CONFIGS["ddpg"], **overrides})


@contextmanager
def one_thread() -> Iterator[None]:
    """Module fixtures are set up before the per-test `one_torch_thread` (tests/ml/conftest.py)
    runs, so they pin torch to one thread themselves."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def small_td3() -> TD3Model:
    with one_thread():
        return td3.train(tiny(), seed=0, hooks=NullHooks())


@pytest.fixture(scope="module")
def small_ddpg() -> DDPGModel:
    with one_thread():
        return ddpg.train(tiny_ddpg(), seed=0, hooks=NullHooks())


# -- learning ----------------------------------------------------------------------------------
def learned_return(name: str, seed: int) -> tuple[float, dict[str, Any], RecordingHooks]:
    """Train with the defaults; the mean return on 20 fresh episodes, none of them seen by
    the evaluations during training."""
    hooks = RecordingHooks()
    algorithms: dict[str, Algorithm[Any]] = {"td3": td3.ALGORITHM, "ddpg": ddpg.ALGORITHM}
    algorithm = algorithms[name]
    model = algorithm.run(algorithm.config(), seed=seed, hooks=hooks)
    assert isinstance(model, TD3Model)
    returns = model.evaluate_policy(episodes=20, seed=10_000)
    return float(np.mean(returns)), model.metadata["summary"], hooks


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_td3_swings_up_the_pendulum_within_20k_steps(seed: int) -> None:
    mean, summary, hooks = learned_return("td3", seed)
    assert summary["steps"] == 20_000
    assert mean >= -200.0, (mean, summary)
    for name in ("losses/critic", "losses/actor", "charts/episodic_return", "eval/return"):
        assert hooks.metrics[name], name
    assert {"rl/q_mean", "rl/q_max_abs"} <= set(hooks.metrics)
    assert not hooks.warnings


@pytest.mark.slow
def test_ddpg_beats_a_random_policy_within_20k_steps() -> None:
    mean, summary, hooks = learned_return("ddpg", 0)
    assert mean >= -400.0 > RANDOM_RETURN, (mean, summary)
    assert "losses/actor" in hooks.metrics and not hooks.warnings


# -- TD3's corrections -------------------------------------------------------------------------
def test_target_policy_smoothing_is_clipped() -> None:
    actions = torch.tensor([[0.0], [0.9], [-1.0], [0.3]]).repeat(250, 1)  # [1000, 1]
    generator = torch.Generator().manual_seed(0)
    smoothed = smoothed_target_actions(actions, std=10.0, clip=0.5, generator=generator)
    noise = smoothed - actions
    # Noise of std 10 clipped to +-0.5, the sum clipped to the action box.
    assert noise.abs().max() <= 0.5 + 1e-6 and smoothed.abs().max() <= 1.0
    assert torch.isclose(noise.abs().max(), torch.tensor(0.5))  # the clip binds
    centered = smoothed[actions == 0.0]
    # std 10: about 96% of the draws are clipped, to either side.
    assert 0.9 < (centered.abs() == 0.5).float().mean() < 1.0
    assert (centered == 0.5).any() and (centered == -0.5).any()
    # A small std is hardly clipped, and the draws follow the generator.
    again = smoothed_target_actions(actions, 0.2, 0.5, torch.Generator().manual_seed(1))
    small = again - actions
    assert 0.15 < small[actions == 0.0].std() < 0.25
    assert torch.equal(
        again, smoothed_target_actions(actions, 0.2, 0.5, torch.Generator().manual_seed(1))
    )
    # DDPG: no smoothing at all, and nothing drawn.
    generator = torch.Generator().manual_seed(2)
    state = generator.get_state()
    assert smoothed_target_actions(actions, 0.0, 0.0, generator) is actions
    assert torch.equal(generator.get_state(), state)


def test_target_takes_the_smaller_critic() -> None:
    rewards = torch.tensor([1.0, -2.0, 0.5])
    terminated = torch.tensor([0.0, 0.0, 1.0])
    next_q = torch.tensor([[10.0, -3.0, 7.0], [4.0, 5.0, 9.0]])  # Q'[i, b]
    y = td_target(rewards, terminated, next_q, gamma=0.9)
    # min over critics [4, -3, 7]; the terminal transition does not bootstrap.
    torch.testing.assert_close(y, torch.tensor([1.0 + 0.9 * 4.0, -2.0 + 0.9 * -3.0, 0.5]))
    one = td_target(rewards, terminated, next_q[:1], gamma=0.9)  # DDPG's single critic
    torch.testing.assert_close(one, torch.tensor([1.0 + 9.0, -2.0 - 2.7, 0.5]))


def make_learner(config: TD3Config) -> Learner:
    with seeded_torch(0):
        actor, critics = make_actor(config, 3, 1), make_critics(config, 3, 1)
    cpu = torch.device("cpu")
    return Learner(
        actor=actor,
        actor_target=copy.deepcopy(actor).requires_grad_(False),
        critics=critics,
        critics_target=copy.deepcopy(critics).requires_grad_(False),
        actor_optimizer=adam(actor.parameters(), lr=1e-2, device=cpu),
        critic_optimizer=adam(critics.parameters(), lr=1e-2, device=cpu),
        noise=torch.Generator().manual_seed(0),
    )


def random_batch(n: int = 16) -> Batch:
    g = torch.Generator().manual_seed(3)
    return Batch(
        observations=torch.randn(n, 3, generator=g),
        actions=torch.rand(n, 1, generator=g) * 2 - 1,
        rewards=-torch.rand(n, generator=g),
        next_observations=torch.randn(n, 3, generator=g),
        terminated=torch.zeros(n),
    )


def flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()]).clone()


def test_actor_and_targets_move_every_policy_delay_critic_updates() -> None:
    config = tiny(policy_delay=3, hidden=[8])
    learner, batch = make_learner(config), random_batch()
    moved: list[tuple[bool, bool, bool, bool]] = []
    for index in range(7):
        before = [flat(m) for m in (learner.critics, learner.actor, learner.actor_target)]
        critics_target = flat(learner.critics_target)
        metrics = update(learner, batch, config, index)
        after = [flat(m) for m in (learner.critics, learner.actor, learner.actor_target)]
        critic, actor, target = (not torch.equal(b, a) for b, a in zip(before, after, strict=True))
        assert target == (not torch.equal(critics_target, flat(learner.critics_target)))
        assert ("losses/actor" in metrics) == actor
        moved.append((critic, actor, target, "losses/actor" in metrics))
    # The critics every time; the actor and both targets after critic updates 3 and 6.
    assert [m[0] for m in moved] == [True] * 7
    assert [m[1] for m in moved] == [False, False, True, False, False, True, False]
    assert all(m[1] == m[2] == m[3] for m in moved)


def test_the_actor_update_leaves_the_critics_gradients_alone() -> None:
    # Two identical learners make the same critic update; only the first also moves the
    # actor (policy_delay 1). Its backward pass through the critic must write no gradient
    # into the critic's weights.
    with_actor, without_actor = make_learner(tiny(hidden=[8])), make_learner(tiny(hidden=[8]))
    batch = random_batch()
    assert "losses/actor" in update(with_actor, batch, tiny(policy_delay=1, hidden=[8]), 0)
    assert "losses/actor" not in update(without_actor, batch, tiny(policy_delay=2), 0)
    pairs = zip(with_actor.critics.parameters(), without_actor.critics.parameters(), strict=True)
    for a, b in pairs:
        assert a.grad is not None and b.grad is not None and torch.equal(a.grad, b.grad)
        assert torch.equal(a, b)
    assert not torch.equal(flat(with_actor.actor), flat(without_actor.actor))


def test_ddpg_is_td3_with_the_corrections_off(small_ddpg: DDPGModel) -> None:
    config = DDPGConfig()
    assert (config.twin_critics, config.policy_delay) == (False, 1)
    assert config.target_policy_noise == 0.0
    shared = set(TD3Config.model_fields) - {
        "twin_critics",
        "policy_delay",
        "target_policy_noise",
        "target_noise_clip",
    }
    assert set(DDPGConfig.model_fields) == set(TD3Config.model_fields)
    assert {f: getattr(config, f) for f in shared} == {f: getattr(TD3Config(), f) for f in shared}
    assert len(small_ddpg.critics.q) == 1 and small_ddpg.kind == "ddpg"
    assert small_ddpg.metadata["algorithm"] == "ddpg"
    assert ddpg.ALGORITHM.name == "ddpg" and ddpg.ALGORITHM.model is DDPGModel
    # Every critic update moves the actor.
    summary = small_ddpg.metadata["summary"]
    assert summary["updates"] == 500  # (total_steps - learning_starts) x 1


# -- the loop ----------------------------------------------------------------------------------
def test_loop_checkpoints_counts_updates_and_reports() -> None:
    hooks = RecordingHooks()
    model = td3.train(tiny(), seed=0, hooks=hooks)
    assert [c["step"] for c in hooks.checkpoints] == [200, 400, 600]  # 600: the final state
    first = hooks.checkpoints[0]
    assert first["buffer"]["size"] == 200 and first["buffer"]["actions"].shape == (200, 1)
    # Random actions before learning_starts, stored in the learner's [-1, 1].
    assert first["buffer"]["actions"].abs().max() <= 1.0
    assert first["buffer"]["actions"].std() > 0.4
    assert first["values"] == {
        "episodes": 1,
        "updates": 100,
        "returns": {"first": None, "best": None},  # no evaluation yet
    }
    assert "noise" in first and "critics_target" in first
    assert model.metadata["summary"]["updates"] == 500
    assert model.shapes == {
        "observation_dim": 3,
        "action_dim": 1,
        "action_low": [-2.0],
        "action_high": [2.0],
        "env_id": "Pendulum-v1",
    }
    for name in ("losses/critic", "losses/actor", "rl/q_mean", "rl/q_max_abs", "eval/return"):
        assert name in hooks.metrics, name


def test_q_values_explode_warning_reads_the_critics() -> None:
    buffer = ReplayBuffer.for_env(10, env_spaces("Pendulum-v1"))
    buffer.add(np.zeros(3), np.zeros(1), -16.0, np.zeros(3), False)
    suspicion = critic_values_explode(buffer, 0.98, env_spaces("Pendulum-v1"))
    assert suspicion.code == "q_values_explode" and suspicion.metric == "rl/q_max_abs"
    assert "learning_rate_critic" in suspicion.message
    assert not suspicion.test(700.0) and suspicion.test(2 * 16.0 * 50 + 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_trains_on_cuda() -> None:
    model = td3.train(tiny(total_steps=300), seed=0, hooks=NullHooks(), device="cuda")
    assert next(model.actor.parameters()).device.type == "cpu"
    assert model.act(PENDULUM_OBS).shape == (3, 1)


# -- the model ---------------------------------------------------------------------------------
def test_actions_stay_within_the_box(small_td3: TD3Model) -> None:
    assert small_td3.observation_dim == 3 and small_td3.action_dim == 1
    assert small_td3.env_id == "Pendulum-v1"
    far = np.concatenate([PENDULUM_OBS, np.full((2, 3), 1e6, np.float32)])
    for noise in (0.0, 0.5, 100.0):
        actions = small_td3.act(far, noise=noise, seed=0)
        assert actions.shape == (5, 1) and actions.dtype == np.float32
        assert (np.abs(actions) <= 2.0).all()
    assert set(np.abs(small_td3.act(far, noise=100.0, seed=0)).ravel()) == {2.0}
    car = td3.train(
        tiny(env="MountainCarContinuous-v0", total_steps=200), seed=0, hooks=NullHooks()
    )
    assert car.shapes["action_low"] == [-1.0] and car.shapes["action_high"] == [1.0]
    assert (np.abs(car.act(np.zeros((4, 2)), noise=5.0, seed=1)) <= 1.0).all()


def test_action_scale_maps_an_asymmetric_box() -> None:
    scale = ActionScale([0.0, -3.0], [1.0, 1.0])
    unit = np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]], np.float32)
    np.testing.assert_allclose(scale.to_env(unit), [[0.0, -3.0], [1.0, 1.0], [0.5, -1.0]])
    np.testing.assert_allclose(scale.from_env(scale.to_env(unit)), unit)
    np.testing.assert_allclose(scale.from_env(np.array([[5.0, -9.0]])), [[1.0, -1.0]])


def test_exploration_noise_is_reproducible_with_a_seed(small_td3: TD3Model) -> None:
    greedy = small_td3.act(PENDULUM_OBS)
    noisy = small_td3.act(PENDULUM_OBS, noise=0.3, seed=5)
    np.testing.assert_array_equal(noisy, small_td3.act(PENDULUM_OBS, noise=0.3, seed=5))
    assert not np.array_equal(noisy, small_td3.act(PENDULUM_OBS, noise=0.3, seed=6))
    assert not np.array_equal(noisy, greedy)
    np.testing.assert_array_equal(greedy, small_td3.act(PENDULUM_OBS, seed=5))  # no noise
    with torch.no_grad():
        mu = small_td3.actor(torch.from_numpy(PENDULUM_OBS)).numpy()
    np.testing.assert_allclose(greedy, 2.0 * mu)  # Pendulum's box is [-2, 2]


def test_critic_values_are_the_twin_minimum(small_td3: TD3Model, small_ddpg: DDPGModel) -> None:
    actions = np.array([[-2.0], [0.5], [2.0]], np.float32)
    values = small_td3.critic_values(PENDULUM_OBS, actions)
    assert values.shape == (3,) and values.dtype == np.float32
    x = torch.from_numpy(PENDULUM_OBS)
    a = torch.from_numpy(actions) / 2.0  # the critics see actions in [-1, 1]
    with torch.no_grad():
        q1 = small_td3.critics.q[0](torch.cat([x, a], dim=1)).squeeze(1)
        q2 = small_td3.critics.q[1](torch.cat([x, a], dim=1)).squeeze(1)
    np.testing.assert_allclose(values, torch.minimum(q1, q2).numpy(), rtol=1e-6)
    assert not torch.equal(q1, q2)
    # Out-of-box actions are valued as the environment plays them: clipped.
    clipped = small_td3.critic_values(PENDULUM_OBS, np.clip(actions * 10, -2.0, 2.0))
    np.testing.assert_array_equal(small_td3.critic_values(PENDULUM_OBS, actions * 10), clipped)
    single = small_ddpg.critic_values(PENDULUM_OBS, actions)
    with torch.no_grad():
        only = small_ddpg.critics.q[0](torch.cat([x, a], dim=1)).squeeze(1).numpy()
    np.testing.assert_allclose(single, only, rtol=1e-6)
    with pytest.raises(QueryError, match="one action per observation"):
        small_td3.critic_values(PENDULUM_OBS, actions[:2])


def test_evaluate_policy_and_queries(small_td3: TD3Model) -> None:
    returns = small_td3.evaluate_policy(2, seed=5)
    assert len(returns) == 2 and returns == small_td3.evaluate_policy(2, seed=5)
    assert all(-200 * 16.3 <= r <= 0.0 for r in returns)
    # The declared queries reach the model through act and critic_values.
    assert {"q-values", "actions", "evaluate", "rollouts"} <= set(queries_for(TD3Model))
    pairs = {"observations": PENDULUM_OBS.tolist(), "actions": [[-2.0], [0.5], [2.0]]}
    answer = get_query("q-values").answer(small_td3, pairs)
    expected = small_td3.critic_values(PENDULUM_OBS, np.array(pairs["actions"], np.float32))
    np.testing.assert_allclose(np.ravel(answer.q_values), expected, rtol=1e-6)
    noisy = {"observations": PENDULUM_OBS.tolist(), "noise": 0.3, "seed": 4}
    chosen = get_query("actions").answer(small_td3, noisy).actions
    np.testing.assert_allclose(chosen, small_td3.act(PENDULUM_OBS, noise=0.3, seed=4), rtol=1e-6)


# -- the config --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        {"env": "CartPole-v1"},
        {"env": "Pong-v5"},
        {"policy_delay": 0},
        {"exploration_noise": -0.1},
        {"target_policy_noise": 11.0},
        {"target_noise_clip": -1.0},
        {"tau": 0.0},
        {"gamma": 1.5},
        {"hidden": []},
        {"hidden": [0]},
        {"learning_rate_actor": 0.0},
        {"batch_size": 0},
        {"gradient_steps": 0},
        {"twin_critic": True},  # misspelt
        {"env_id": "Pendulum-v1"},  # DQN's name for the field
    ],
)
def test_config_rejects_bad_values(bad: dict[str, Any]) -> None:
    for config_class in (TD3Config, DDPGConfig):
        with pytest.raises(ValidationError):
            config_class(**bad)


def test_algorithms_are_declared() -> None:
    for algorithm, model in ((td3.ALGORITHM, TD3Model), (ddpg.ALGORITHM, DDPGModel)):
        assert algorithm.family == "rl" and algorithm.queue == "gpu"
        assert not algorithm.exact_resume and algorithm.model is model
    assert td3.ALGORITHM.name == "td3" and TD3Model.kind == "td3"


def test_cost_estimate_is_in_the_ballpark_of_real_networks() -> None:
    """6 x (actor + critics) parameters x batch x gradient steps, counted on built networks,
    within 3x; and the estimate grows with what it claims to."""
    config = TD3Config(hidden=[256, 256], total_steps=5_000, learning_starts=1_000)
    networks = (make_actor(config, 3, 1), make_critics(config, 3, 1))  # Pendulum-v1
    params = sum(p.numel() for net in networks for p in net.parameters())
    reference = 6 * params * config.batch_size * (config.total_steps - config.learning_starts)
    assert reference / 3 < td3.cost(config).total < 3 * reference
    base = td3.cost(TD3Config())
    for field, value in [
        ("hidden", [256, 256]),
        ("batch_size", 1024),
        ("total_steps", 100_000),
        ("gradient_steps", 4),
        ("eval_episodes", 50),
    ]:
        assert td3.cost(TD3Config(**{field: value})).total > base.total, field
    single = td3.cost(TD3Config(twin_critics=False))
    assert single.total < base.total and 0 < base.per_step < base.total
    # DDPG moves the actor after every critic update, TD3 after every other one.
    assert td3.cost(DDPGConfig()).total > single.total


def test_stop_on_ends_the_run_on_collapsing_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    def always(returns: Any, **_: Any) -> Suspicion:
        return Suspicion("returns_collapse", "test", "eval/return", lambda v: True, patience=1)

    monkeypatch.setattr(health, "returns_collapse", always)
    config = tiny(stop_on=["returns_collapse"])
    hooks = RecordingHooks()
    model = td3.train(config, seed=0, hooks=hooks)
    assert [code for _, code, _ in hooks.warnings] == ["returns_collapse", "stopped_early"]
    summary = model.metadata["summary"]
    assert summary["steps"] == 300 and summary["ended_on"] == {
        "step": 300,
        "code": "returns_collapse",
    }
    with pytest.raises(ValidationError):
        TD3Config(stop_on=["mode_collapse"])
