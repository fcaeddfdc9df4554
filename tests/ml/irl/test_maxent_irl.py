"""Maximum-entropy IRL: it recovers the hidden reward of a grid and a near-optimal policy,
on every world and from every source of demonstrations.

Save/load, determinism, stop/resume and config rejection are checked for every algorithm in
tests/ml/test_algorithms.py.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from ml.core.errors import ConfigError, TrainingAborted
from ml.core.hooks import NullHooks, RecordingHooks
from ml.data import parse_upload
from ml.irl.features import coordinates
from ml.irl.maxent_irl import MaxEntIRLConfig, train
from ml.irl.problem import DEFAULT_LAYOUT
from ml.tabular import dp
from ml.tabular.gridworld import GridEnv, build_grid
from ml.tabular.value_iteration import ValueIterationConfig
from ml.tabular.value_iteration import train as solve
from tests.tiny_configs import TINY_CONFIGS

SMALL = TINY_CONFIGS["maxent_irl"]
# Along the top row, then down the right edge to the goal.
TOP_THEN_DOWN = {"states": [0, 1, 2, 3, 4, 9, 14, 19], "actions": [2, 2, 2, 2, 1, 1, 1, 1]}
TRUE_REWARD_METRICS = {"evd", "epic", "reward_correlation", "reward_spearman"}


def fit(**config: Any) -> Any:
    return train(MaxEntIRLConfig(**config), seed=0, hooks=NullHooks())


def test_learned_reward_correlates_and_its_policy_is_optimal() -> None:
    """Default config: the 5x5 default grid, 100 optimal demonstrations of 25 steps, seed 0;
    the reward is linear (one-hot) in the features, and it is recovered."""
    hooks = RecordingHooks()
    model = train(MaxEntIRLConfig(), seed=0, hooks=hooks)
    summary = model.metadata["summary"]
    assert summary["reward_correlation"] >= 0.9
    assert summary["evd"] == pytest.approx(0.0, abs=1e-6)
    assert summary["expected_value_ratio"] >= 0.99
    assert int(np.argmax(model.reward)) == 24  # G, bottom right
    assert summary["iterations"] < 30  # L-BFGS
    assert summary["nll"] < np.log(4)  # more likely than a uniform policy makes them


def test_linear_reward_over_user_features_is_recovered() -> None:
    """An uploaded mdp (an open 8x8 room) with its own features (the coordinates, squared
    and multiplied) and a true reward linear in them, a ramp towards the bottom-right: the
    5 learned weights recover it."""
    mdp = build_grid(GridEnv(layout=["." * 8] * 8, slip=0.1))
    F = coordinates((8, 8))  # F[s, 5]
    ramp = F @ np.array([1.0, 1.0, 0.0, 0.0, 0.0]) / 2  # r[s] = (row + col) / 2, scaled
    buffer = io.BytesIO()
    np.savez(buffer, P=mdp.P, R=ramp, features=F)
    world = parse_upload("mdp", buffer.getvalue(), max_bytes=1 << 22)
    config = MaxEntIRLConfig(
        env={"kind": "mdp", "dataset": {"id": "room"}}, features="world", discount=0.9, l2=0.01
    )
    model = train(config, seed=0, hooks=NullHooks(), datasets={"room": world})
    assert model.metadata["summary"]["reward_correlation"] >= 0.9
    assert model.metadata["summary"]["expected_value_ratio"] >= 0.99


@pytest.mark.parametrize(
    "change",
    [
        {"optimizer": "adam", "max_iterations": 400},
        {"horizon": "infinite"},
        {"reward": "state_action"},
        {"features": "terrain"},
    ],
    ids=["adam", "infinite-horizon", "state-action", "terrain"],
)
def test_variants_learn_an_optimal_policy(change: dict[str, Any]) -> None:
    summary = fit(**change).metadata["summary"]
    assert summary["expected_value_ratio"] >= 0.99
    assert set(summary) >= TRUE_REWARD_METRICS


def test_lbfgs_and_adam_agree() -> None:
    """The objective is concave: both optimisers end at the same reward."""
    tight = {"tolerance": 1e-6, "occupancy_tolerance": 0.0}
    lbfgs = fit(**tight, max_iterations=200)
    adam = fit(**tight, optimizer="adam", learning_rate=0.05, max_iterations=3000)
    np.testing.assert_allclose(lbfgs.reward, adam.reward, atol=1e-3)
    assert lbfgs.metadata["summary"]["iterations"] * 10 < adam.metadata["summary"]["iterations"]


def test_state_action_rewards_and_soft_policy() -> None:
    model = fit(reward="state_action")
    assert model.reward.shape == (25, 4) and model.reward_form == "state_action"
    np.testing.assert_allclose(model.soft_policy.sum(axis=1), 1.0)
    # The soft policy prefers the greedy action in the start cell.
    assert int(model.soft_policy[0].argmax()) == int(model.policy[0])


def test_a_soft_optimal_expert_is_demonstrated() -> None:
    env = GridEnv(layout=DEFAULT_LAYOUT, slip=0.1, step_reward=-1.0, goal_reward=10.0)
    summary = fit(env=env, demonstrations={"policy": "soft_optimal"}).metadata["summary"]
    assert summary["expected_value_ratio"] >= 0.9


def test_objectworld_and_taxi_are_worlds_too() -> None:
    objectworld = {"kind": "objectworld", "size": 8, "n_objects": 6}
    summary = fit(env=objectworld, features="world", discount=0.9).metadata["summary"]
    assert summary["evd"] >= 0 and set(summary) >= TRUE_REWARD_METRICS
    taxi = fit(env={"kind": "taxi"}, discount=0.9, demonstrations={"n_demos": 20, "length": 20})
    assert taxi.reward.shape == (500,) and taxi.grid_shape == (5, 5, 5, 4)


def test_learns_from_uploaded_trajectories() -> None:
    """An uploaded dataset: its states and actions, no true reward reported."""
    episodes = [TOP_THEN_DOWN] * 5
    dataset = parse_upload("trajectories", _json(episodes), max_bytes=1 << 20)
    model = train(
        MaxEntIRLConfig(demonstrations={"source": "dataset", "dataset": {"id": "d1"}}),
        seed=0,
        hooks=NullHooks(),
        datasets={"d1": dataset},
    )
    summary = model.metadata["summary"]
    assert not TRUE_REWARD_METRICS & set(summary) and {"nll", "feature_gap"} <= set(summary)
    # The demonstrator walks along the top row and down the right edge.
    assert model.policy[0] == 2 and model.policy[9] == 1


def test_observations_are_the_worlds_coordinates() -> None:
    """Trajectories of [row, col] observations train as the states they name."""
    path = TOP_THEN_DOWN["states"]
    observed = {
        "observations": [[s // 5, s % 5] for s in path],
        "actions": TOP_THEN_DOWN["actions"],
    }
    models = []
    for episode in (TOP_THEN_DOWN, observed):
        dataset = parse_upload("trajectories", _json([episode] * 5), max_bytes=1 << 20)
        config = MaxEntIRLConfig(demonstrations={"source": "dataset", "dataset": {"id": "d"}})
        models.append(train(config, seed=0, hooks=NullHooks(), datasets={"d": dataset}))
    np.testing.assert_array_equal(models[0].reward, models[1].reward)
    off_grid = {"observations": [[0, 0], [0, 5]], "actions": [2, 2]}
    dataset = parse_upload("trajectories", _json([off_grid]), max_bytes=1 << 20)
    with pytest.raises(ConfigError, match=r"observation 1 \(\[0.0, 5.0\]\) is not a cell"):
        train(config, seed=0, hooks=NullHooks(), datasets={"d": dataset})


def test_uploaded_trajectories_that_do_not_fit_are_refused() -> None:
    config = MaxEntIRLConfig(demonstrations={"source": "dataset", "dataset": {"id": "d1"}})
    cases = [
        ([{"states": [0, 30], "actions": [0, 1]}], "31 states"),
        ([{"states": [0, 1], "actions": [0, 7]}], "8 actions"),
        ([{"states": [0, 6], "actions": [0, 1]}], "a wall"),
    ]
    for episodes, message in cases:
        dataset = parse_upload("trajectories", _json(episodes), max_bytes=1 << 20)
        with pytest.raises(ConfigError, match=message) as error:
            train(config, seed=0, hooks=NullHooks(), datasets={"d1": dataset})
        assert error.value.field == "demonstrations.dataset.id"


def test_learns_from_a_models_rollouts() -> None:
    """Demonstrations rolled out by a value-iteration model of the same world."""
    env = GridEnv(layout=DEFAULT_LAYOUT, slip=0.1)
    teacher = solve(ValueIterationConfig(env=env, discount=0.95), seed=0, hooks=NullHooks())
    config = MaxEntIRLConfig(
        env=env, demonstrations={"source": "model", "model": {"model": "teacher@prod"}}
    )
    model = train(config, seed=0, hooks=NullHooks(), models={"teacher@prod": teacher})
    assert (model.policy[~model.terminal_mask & ~model.wall_mask] == 0).mean() < 1
    assert "evd" not in model.metadata["summary"]
    expert = dp.value_iteration(*_task(env), 0.95)
    moved = ~model.terminal_mask & ~model.wall_mask
    assert (model.policy[moved] == expert.policy[moved]).mean() >= 0.8
    other = solve(ValueIterationConfig(env={"layout": ["S.G"]}), seed=0, hooks=NullHooks())
    with pytest.raises(ConfigError, match="no policy over this world's 25 states"):
        train(config, seed=0, hooks=NullHooks(), models={"teacher@prod": other})


def test_a_reward_without_prior_that_diverges_fails_the_run_clearly() -> None:
    """Sampled demonstrations on a slippery grid: no reward reproduces their visits, so
    without the prior the objective has no maximum and L-BFGS follows it out."""
    with pytest.raises(TrainingAborted, match="set l2") as aborted:
        fit(l2=0.0, tolerance=1e-9, occupancy_tolerance=0.0, max_iterations=2000)
    assert aborted.value.code == "diverged" and (aborted.value.step or 0) < 100


def test_reports() -> None:
    hooks = RecordingHooks()
    train(MaxEntIRLConfig(**SMALL), seed=0, hooks=hooks)
    assert [step for step, _ in hooks.metrics["irl/feature_gap"]] == [10, 20]
    assert [step for step, _ in hooks.metrics["irl/evd"]] == [10, 20]
    assert [c["step"] for c in hooks.checkpoints] == [5, 10, 15, 20]  # 20: the final state
    assert set(hooks.checkpoints[0]) == {"step", "values", "theta", "optimizer", "soft_values"}


def test_config_validation_and_old_fields() -> None:
    with pytest.raises(ValidationError):
        MaxEntIRLConfig(discount=1.0)
    with pytest.raises(ValidationError):
        MaxEntIRLConfig(features="pixels")
    with pytest.raises(ValidationError, match="inside `demonstrations`"):
        MaxEntIRLConfig.model_validate({"n_demos": 3, "demonstrations": {"n_demos": 4}})
    with pytest.raises(ValidationError, match="soft values at once"):
        MaxEntIRLConfig(env={"size": [512, 512]}, demonstrations={"length": 200})
    with pytest.raises(ValidationError, match="at most 262144 states"):
        MaxEntIRLConfig(env={"size": [600, 600]})
    with pytest.raises(ValidationError, match="only objectworld, binaryworld and uploaded"):
        MaxEntIRLConfig(features="world")
    with pytest.raises(ValidationError, match="this world is not a grid"):
        MaxEntIRLConfig(env={"kind": "taxi"}, features="terrain")
    # `iterations`, `n_demos`, `demo_length` and `random_starts` were the config's until
    # 2026-12-07; job specs written before keep working for the deprecation period.
    old = MaxEntIRLConfig.model_validate(
        {"iterations": 7, "n_demos": 3, "demo_length": 9, "random_starts": False}
    )
    assert old.max_iterations == 7
    assert old.demonstrations.model_dump() == {
        "source": "expert",
        "policy": "optimal",
        "n_demos": 3,
        "length": 9,
        "random_starts": False,
    }


def _task(env: GridEnv) -> tuple[Any, Any]:
    mdp = build_grid(env)
    return mdp.transitions, mdp.R


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()


def test_terminal_states_become_absorbing_and_the_rest_stays() -> None:
    from ml.irl.demonstrations import absorbing

    mdp = build_grid(GridEnv(layout=["S.H", "..G"], slip=0.2))
    P = absorbing(mdp).toarray().reshape(6, 4, 6)
    np.testing.assert_allclose(P.sum(axis=2), 1.0)
    for s in (2, 5):  # H and G: every action stays
        np.testing.assert_array_equal(P[s], np.eye(6)[[s] * 4])
    np.testing.assert_array_equal(P[[0, 1, 3, 4]], mdp.P[[0, 1, 3, 4]])
