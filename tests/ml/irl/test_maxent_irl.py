"""Maximum-entropy IRL: it recovers the hidden reward of a grid and a near-optimal policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

import ml
from ml.core.errors import QueryError, TrainingStopped
from ml.core.hooks import NullHooks, RecordingHooks
from ml.irl.maxent_irl import (
    DEFAULT_LAYOUT,
    MaxEntIRLConfig,
    MaxEntIRLModel,
    generate_demos,
    pearson,
    state_features,
    train,
)
from ml.tabular import dp
from ml.tabular.gridworld import GridEnv, build_grid

SMALL = {"iterations": 20, "n_demos": 20, "demo_length": 12}


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
    rewards = model.rewards()
    assert int(np.argmax(rewards["rewards"])) == 24  # G, bottom right
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
    assert np.isfinite(model.rewards()["rewards"]).all()


def test_queries() -> None:
    model = train(MaxEntIRLConfig(**SMALL), seed=0, hooks=NullHooks())
    full = model.rewards()
    assert full["shape"] == [5, 5] and len(full["rewards"]) == 25
    assert np.array(full["grid"]).shape == (5, 5)
    assert model.rewards(states=[[4, 4], 0])["rewards"] == [full["rewards"][24], full["rewards"][0]]
    values = model.values()
    assert len(values["values"]) == 25 and values["layout"] == DEFAULT_LAYOUT
    answer = model.q_values(states=[0])
    assert answer["actions"] == [values["policy"][0]]
    assert max(answer["q_values"][0]) == pytest.approx(values["values"][0])
    assert set(model.queries) == {"rewards", "values", "q-values"}
    for bad in ([25], [[5, 0]], ["x"], [], [[1.5, 2]]):
        with pytest.raises(QueryError):
            model.rewards(states=bad)
        with pytest.raises(QueryError):
            model.q_values(states=bad)
    with pytest.raises(QueryError):
        model.q_values(observations=[[0.0, 0.0]])
    with pytest.raises(ml.UnsupportedQuery):
        model.samples(3)


def test_config_validation() -> None:
    with pytest.raises(ValidationError):
        MaxEntIRLConfig(env={"kind": "frozen_lake"})
    with pytest.raises(ValidationError):
        MaxEntIRLConfig(discount=1.0)
    with pytest.raises(ValidationError):
        MaxEntIRLConfig(features="pixels")
    with pytest.raises(ValidationError):
        MaxEntIRLConfig(env={"layout": ["S..", "..."]})


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = train(MaxEntIRLConfig(**SMALL), seed=0, hooks=NullHooks())
    model.save(tmp_path / "m.pt")
    loaded = ml.load(tmp_path / "m.pt")
    assert isinstance(loaded, MaxEntIRLModel)
    assert loaded.rewards() == model.rewards()
    assert loaded.values() == model.values()
    assert loaded.q_values(states=[3]) == model.q_values(states=[3])


def test_same_seed_same_result() -> None:
    a = ml.train("maxent_irl", SMALL, seed=5)
    b = ml.train("maxent_irl", SMALL, seed=5)
    c = ml.train("maxent_irl", SMALL, seed=6)
    assert a.rewards() == b.rewards()
    assert a.rewards() != c.rewards()  # other demonstrations


def test_stop_and_resume_continue_from_the_checkpoint() -> None:
    config = MaxEntIRLConfig(**SMALL, checkpoint_interval=5)
    full = train(config, seed=0, hooks=NullHooks())

    hooks = RecordingHooks(stop_after_checkpoints=1)
    with pytest.raises(TrainingStopped) as stopped:
        train(config, seed=0, hooks=hooks)
    assert stopped.value.step == 5
    state = hooks.checkpoints[-1]
    assert state["step"] == 5 and isinstance(state["theta"], torch.Tensor)
    assert state["demos"].shape == (20, 12)

    resumed_hooks = RecordingHooks()
    resumed = train(config, seed=0, hooks=resumed_hooks, resume=state)
    assert resumed_hooks.progress[0][0] == 5
    assert resumed_hooks.metrics["irl/feature_gap"][0][0] == 10
    assert resumed.metadata["summary"]["iterations"] == 20
    np.testing.assert_allclose(resumed.rewards()["rewards"], full.rewards()["rewards"])
