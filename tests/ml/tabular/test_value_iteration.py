"""Value iteration and the DP kernels: published and hand-computed answers, and the model.

Save/load, determinism, stop/resume and config rejection are checked for every algorithm in
tests/ml/test_algorithms.py.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from pydantic import ValidationError

import ml
from ml.core.hooks import NullHooks, RecordingHooks
from ml.tabular import dp
from ml.tabular.gridworld import GridEnv
from ml.tabular.toy_text import FrozenLakeEnv
from ml.tabular.value_iteration import ValueIterationConfig, ValueIterationModel, train

LEFT, DOWN, RIGHT, UP = 0, 1, 2, 3


def solve(config: ValueIterationConfig, seed: int = 0) -> ValueIterationModel:
    return train(config, seed=seed, hooks=NullHooks())


def frozen_lake(discount: float, **kwargs: object) -> ValueIterationConfig:
    return ValueIterationConfig(env=FrozenLakeEnv(), discount=discount, **kwargs)


# -- published answers -------------------------------------------------------------------------
@pytest.mark.parametrize(("discount", "expected"), [(0.9, 0.0689), (0.99, 0.5420)])
def test_slippery_frozen_lake_start_value(discount: float, expected: float) -> None:
    model = solve(frozen_lake(discount))
    assert abs(model.V[0] - expected) < 5e-5
    assert model.metadata["summary"]["converged"]
    assert model.metadata["summary"]["start_value"] == model.V[0]


@pytest.mark.slow
def test_frozen_lake_greedy_policy_succeeds_about_74_percent() -> None:
    policy = dp.greedy(solve(frozen_lake(0.99)).Q)
    env = gym.make("FrozenLake-v1", map_name="4x4", is_slippery=True)  # 100-step time limit
    successes, episodes = 0, 2000
    obs, _ = env.reset(seed=0)
    for _ in range(episodes):
        done, reward = False, 0.0
        while not done:
            obs, r, terminated, truncated, _ = env.step(int(policy[obs]))
            done, reward = terminated or truncated, float(r)
        successes += reward == 1.0
        obs, _ = env.reset()
    assert 0.70 <= successes / episodes <= 0.78


def test_russell_norvig_4x3_world() -> None:
    """AIMA (3rd ed.) Fig. 17.3: utilities with R(s) = -0.04, gamma = 1, 0.8/0.1/0.1 moves.

    AIMA charges R(s) for the state being left, Crucible the reward for the state entered, so
    V here is AIMA's U plus 0.04 (the first charge), and terminal values are 0, not +-1.
    """
    model = solve(ValueIterationConfig(discount=1.0, tolerance=1e-12))  # the default grid
    V = model.V.reshape(model.grid_shape) - 0.04
    aima = {(0, 0): 0.812, (0, 1): 0.868, (0, 2): 0.918, (1, 0): 0.762, (1, 2): 0.660}
    aima |= {(2, 0): 0.705, (2, 1): 0.655, (2, 2): 0.611, (2, 3): 0.388}
    for cell, utility in aima.items():
        assert abs(V[cell] - utility) < 5e-4, cell
    policy = dp.greedy(model.Q).reshape(3, 4)
    # AIMA Fig. 17.2(a): right along the top, up the left column, left along the bottom, and
    # up from (1, 2) towards the top row rather than right past the -1.
    assert policy[0, :3].tolist() == [RIGHT] * 3
    assert policy[1, 0] == UP and policy[2, 0] == UP and policy[1, 2] == UP
    assert policy[2, 1:].tolist() == [LEFT] * 3


def test_tiny_corridor_exact_values() -> None:
    """S . G in one row; slips go up or down, off the grid, so the agent stays put."""
    gamma, step, p = 0.9, -0.1, 0.2
    config = ValueIterationConfig(
        env=GridEnv(layout=["S.G"], step_reward=step, slip=p), discount=gamma, tolerance=1e-12
    )
    values = solve(config).V
    # V1 = (1-p) * 1 + p * (step + gamma V1); V0 = (1-p)(step + gamma V1) + p (step + gamma V0)
    v1 = ((1 - p) + p * step) / (1 - gamma * p)
    v0 = ((1 - p) * (step + gamma * v1) + p * step) / (1 - gamma * p)
    assert values == pytest.approx([v0, v1, 0.0], abs=1e-10)
    deterministic = ValueIterationConfig(
        env=GridEnv(layout=["S.G"], step_reward=step, slip=0.0), discount=gamma
    )
    np.testing.assert_allclose(solve(deterministic).V, [0.8, 1.0, 0.0], atol=1e-12)


# -- the kernels -------------------------------------------------------------------------------
def random_mdp(rng: np.random.Generator, n_states: int = 6, n_actions: int = 3) -> tuple:
    P = rng.random((n_states, n_actions, n_states)) ** 3  # P[s, a, s']
    P /= P.sum(axis=2, keepdims=True)
    R = rng.normal(size=(n_states, n_actions))  # R[s, a]
    terminal = np.zeros(n_states, dtype=bool)
    terminal[-1] = True
    return P, R, terminal


@pytest.mark.parametrize("seed", range(5))
def test_value_iteration_policy_iteration_and_evaluation_agree(seed: int) -> None:
    P, R, terminal = random_mdp(np.random.default_rng(seed))
    vi = dp.value_iteration(P, R, 0.9, terminal=terminal, tolerance=1e-12)
    pi = dp.policy_iteration(P, R, 0.9, terminal=terminal)
    assert vi.converged and pi.converged
    np.testing.assert_allclose(vi.V, pi.V, atol=1e-9)
    assert (vi.policy[~terminal] == pi.policy[~terminal]).all()
    exact = dp.policy_evaluation(P, R, vi.policy, 0.9, terminal=terminal)
    iterative, sweeps = dp.iterative_policy_evaluation(P, R, vi.policy, 0.9, terminal=terminal)
    np.testing.assert_allclose(exact, vi.V, atol=1e-9)
    np.testing.assert_allclose(iterative, exact, atol=1e-8)
    assert sweeps > 1 and exact[-1] == 0.0
    # V* satisfies the Bellman optimality equation (S&B Eq. 4.1) with a stochastic policy too.
    uniform = np.full(R.shape, 1 / R.shape[1])
    v_uniform = dp.policy_evaluation(P, R, uniform, 0.9, terminal=terminal)
    assert (v_uniform <= vi.V + 1e-9).all()


def test_policy_evaluation_reports_never_ending_policies() -> None:
    P = np.zeros((2, 1, 2))
    P[0, 0, 0] = 1.0  # state 0 loops forever
    P[1, 0, 1] = 1.0
    with pytest.raises(ValueError, match="never reaches a terminal"):
        dp.policy_evaluation(P, np.zeros((2, 1)), np.zeros(2, dtype=int), 1.0)


def test_model_exposes_its_tables_and_grid() -> None:
    model = solve(ValueIterationConfig())
    assert model.V.shape == (12,) and model.Q.shape == (12, 4)
    np.testing.assert_allclose(model.Q.max(axis=1), model.V, atol=1e-7)
    assert model.grid_shape == (3, 4) and model.layout == ["...G", ".#.H", "S..."]
    assert model.action_names == ["left", "down", "right", "up"]
    assert model.terminal[3] and not model.terminal[8]  # G, S
    assert model.wall[5] and not model.terminal[5]  # a wall is not a terminal state
    assert model.V[3] == 0.0 and model.V[7] == 0.0  # nothing follows G or H
    assert model.metadata["shapes"] == {"n_states": 12, "n_actions": 4, "grid_shape": [3, 4]}
    assert not hasattr(model, "reward")  # the rewards query is for learned rewards


def test_config_validation() -> None:
    with pytest.raises(ValidationError, match="positive step or bump reward"):
        ValueIterationConfig(env=GridEnv(step_reward=0.1), discount=1.0)
    with pytest.raises(ValidationError):
        ValueIterationConfig(discount=1.5)
    with pytest.raises(ValidationError):
        ValueIterationConfig(env={"kind": "frozen_lake", "map_name": "5x5"})
    assert ml.get_algorithm("value_iteration").queue == "cpu"
    assert ml.get_algorithm("value_iteration").family == "dp"


def test_reports_convergence_and_checkpoints_v() -> None:
    config = frozen_lake(0.99, checkpoint_interval=50)
    hooks = RecordingHooks()
    model = train(config, seed=0, hooks=hooks)
    iterations = model.metadata["summary"]["iterations"]
    assert hooks.metrics["dp/delta"][-1] == (iterations, model.metadata["summary"]["delta"])
    assert hooks.metrics["dp/delta"][-1][1] < config.tolerance
    assert hooks.last("dp/start_value") == model.V[0]
    assert [c["step"] for c in hooks.checkpoints][:2] == [50, 100]
    assert hooks.checkpoints[0]["V"].shape == (16,)
    assert hooks.progress[-1] == (iterations, config.max_iterations)
