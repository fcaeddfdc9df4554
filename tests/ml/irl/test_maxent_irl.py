"""Maximum-entropy IRL: it recovers the hidden reward of a grid and a near-optimal policy.

Save/load, determinism, stop/resume and config rejection are checked for every algorithm in
tests/ml/test_algorithms.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from ml.core.hooks import NullHooks, RecordingHooks
from ml.irl.maxent_irl import (
    DEFAULT_LAYOUT,
    Ascent,
    MaxEntIRLConfig,
    generate_demos,
    pearson,
    state_features,
    train,
)
from ml.tabular import dp
from ml.tabular.gridworld import GridEnv, build_grid
from tests.tiny_configs import TINY_CONFIGS

SMALL = TINY_CONFIGS["maxent_irl"]


@pytest.mark.slow
def test_learned_reward_correlates_and_its_policy_is_near_optimal() -> None:
    """Default config: the 5x5 default grid, 100 demonstrations of 25 states, seed 0.

    The expected-value ratio is measured from the start cell S (the start distribution).
    """
    hooks = RecordingHooks()
    model = train(MaxEntIRLConfig(), seed=0, hooks=hooks)
    summary = model.metadata["summary"]
    assert summary["reward_correlation"] >= 0.8
    assert summary["expected_value_ratio"] >= 0.9
    # It learned: the feature-count gap shrank, and the goal got the highest reward.
    gaps = [gap for _, gap in hooks.metrics["irl/feature_gap"]]
    assert gaps[-1] < gaps[0] / 10
    assert int(np.argmax(model.reward)) == 24  # G, bottom right
    assert hooks.last("irl/reward_correlation") == summary["reward_correlation"]


@pytest.mark.slow
def test_hazard_grid_policy_is_near_optimal() -> None:
    """With hazards the expert never enters, their reward is not identifiable (see the module
    docstring), but the policy for the learned reward still avoids them and reaches G."""
    env = GridEnv(layout=["S....", ".##..", "...H.", ".#...", "...HG"], slip=0.1)
    model = train(MaxEntIRLConfig(env=env), seed=0, hooks=NullHooks())
    assert model.metadata["summary"]["expected_value_ratio"] >= 0.9
    assert model.metadata["summary"]["reward_correlation"] > 0.3


def test_demos_follow_the_expert_and_stay_in_the_goal() -> None:
    mdp = build_grid(GridEnv(layout=["S.G"], slip=0.0))
    expert = dp.value_iteration(mdp.P, mdp.R, 0.9, terminal=mdp.terminal)
    rng = np.random.default_rng(0)
    demos = generate_demos(mdp.P, expert.policy, np.array([0]), 3, 5, rng)
    assert demos.tolist() == [[0, 1, 2, 2, 2]] * 3


def test_features_and_pearson() -> None:
    mdp = build_grid(GridEnv(layout=DEFAULT_LAYOUT))
    assert state_features(mdp, "onehot").shape == (25, 25)
    terrain = state_features(mdp, "terrain")
    assert terrain.shape == (25, 3) and terrain[24].tolist() == [0, 1, 0]
    assert terrain[6].tolist() == [0, 0, 0]  # a wall
    coordinates = state_features(mdp, "coordinates")
    assert coordinates.shape == (25, 5) and coordinates[24, :2].tolist() == [1, 1]
    assert pearson(np.arange(4.0), 2 * np.arange(4.0) + 1) == pytest.approx(1.0)
    assert pearson(np.ones(4), np.arange(4.0)) == 0.0


@pytest.mark.parametrize("features", ["terrain", "coordinates"])
def test_other_features_train(features: str) -> None:
    model = train(MaxEntIRLConfig(features=features, **SMALL), seed=0, hooks=NullHooks())
    assert model.metadata["shapes"]["n_features"] in (3, 5)
    assert np.isfinite(model.reward).all()


def test_model_exposes_reward_values_and_grid() -> None:
    model = train(MaxEntIRLConfig(**SMALL), seed=0, hooks=NullHooks())
    assert model.reward.shape == model.V.shape == (25,) and model.Q.shape == (25, 4)
    assert model.grid_shape == (5, 5) and model.layout == DEFAULT_LAYOUT
    assert model.action_names == ["left", "down", "right", "up"]
    assert model.terminal[24] and not model.terminal[0]  # G, S
    assert model.wall[6] and not model.terminal[6]
    # V and Q are optimal for the learned reward on the absorbing grid: Q(s, .) <= V(s).
    np.testing.assert_allclose(model.Q.max(axis=1), model.V, atol=1e-6)
    assert model.metadata["summary"]["iterations"] == SMALL["max_iterations"]


def test_adam_ascent_matches_the_paper_and_round_trips() -> None:
    theta, grad = np.zeros(2), np.array([1.0, -2.0])
    ascent = Ascent(2, method="adam", learning_rate=0.1)
    ascent.step(theta, grad)
    # The first Adam step moves every coordinate by the step size, in the gradient's sign.
    np.testing.assert_allclose(theta, [0.1, -0.1], rtol=1e-6)
    copy = Ascent(2, method="adam", learning_rate=0.1)
    copy.load_state_dict(ascent.state_dict())
    assert copy.t == 1 and np.array_equal(copy.m, ascent.m)
    plain = np.zeros(2)
    Ascent(2, method="sgd", learning_rate=0.5).step(plain, grad)
    assert plain.tolist() == [0.5, -1.0]


def test_config_validation() -> None:
    with pytest.raises(ValidationError):
        MaxEntIRLConfig(env={"kind": "frozen_lake"})
    with pytest.raises(ValidationError):
        MaxEntIRLConfig(discount=1.0)
    with pytest.raises(ValidationError):
        MaxEntIRLConfig(features="pixels")
    with pytest.raises(ValidationError):
        MaxEntIRLConfig(env={"layout": ["S" + "." * 32] * 32})  # dense P: at most 1024 cells


def test_reports_every_log_interval() -> None:
    hooks = RecordingHooks()
    train(MaxEntIRLConfig(**SMALL), seed=0, hooks=hooks)
    assert [step for step, _ in hooks.metrics["irl/feature_gap"]] == [10, 20]
    assert [c["step"] for c in hooks.checkpoints] == [5, 10, 15]
    assert set(hooks.checkpoints[0]) == {"step", "values", "theta", "optimizer"}


def test_the_old_name_of_max_iterations_is_still_accepted() -> None:
    """`iterations` was renamed `max_iterations` (one budget vocabulary); job specs written
    before keep working for the deprecation period the README's API changelog gives."""
    assert MaxEntIRLConfig.model_validate({"iterations": 7}).max_iterations == 7
    assert MaxEntIRLConfig.model_validate({"max_iterations": 8}).max_iterations == 8
