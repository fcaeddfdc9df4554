"""Policy evaluation, policy iteration and value iteration: published answers, agreement on
random MDPs, the worlds they accept, a 10^6-state grid, and how a run that does not converge
ends.

Save/load, determinism, stop/resume and config rejection are checked for every algorithm in
tests/ml/test_algorithms.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

import ml
from ml.core.errors import ConfigError, TrainingAborted
from ml.core.hooks import RecordingHooks
from ml.data import Dataset
from ml.tabular import dp
from ml.tabular.gridworld import GridEnv, build_grid
from ml.tabular.models import TabularValueModel
from ml.tabular.worlds import from_dataset

MDP_ID = "mdp-1"


def solve(name: str, config: dict[str, Any], **kwargs: Any) -> TabularValueModel:
    model = ml.train(name, config, **kwargs)
    assert isinstance(model, TabularValueModel)
    return model


def forest(r1: float = 4.0, r2: float = 2.0, p: float = 0.1) -> dict[str, np.ndarray]:
    """pymdptoolbox's `example.forest()` (3 states, wait or cut) as an `mdp` dataset's arrays."""
    wait = [[p, 1 - p, 0.0], [p, 0.0, 1 - p], [p, 0.0, 1 - p]]
    cut = [[1.0, 0.0, 0.0]] * 3
    P = np.stack([np.array(wait), np.array(cut)], axis=1)  # P[s, a, s']
    R = np.array([[0.0, 0.0], [0.0, 1.0], [r1, r2]])  # R[s, a]
    return {"P": P, "R": R}


def uploaded(arrays: dict[str, np.ndarray]) -> dict[str, Dataset]:
    return {MDP_ID: Dataset(kind="mdp", arrays=arrays)}


MDP_ENV = {"kind": "mdp", "dataset": {"kind": "uploaded", "id": MDP_ID}}


# -- published answers -------------------------------------------------------------------------
def test_uniform_policy_on_sutton_barto_4x4_grid() -> None:
    # Example 4.1: -1 per move, terminal corners, undiscounted; V of the random policy.
    env = {
        "layout": ["G...", "....", "....", "...G"],
        "slip": 0.0,
        "step_reward": -1.0,
        "goal_reward": -1.0,
    }
    model = solve("policy_evaluation", {"env": env, "discount": 1.0})
    np.testing.assert_allclose(model.V[:4], [0.0, -14.0, -20.0, -22.0], atol=1e-9)
    np.testing.assert_allclose(model.V.reshape(4, 4)[3], [-22.0, -20.0, -14.0, 0.0], atol=1e-9)


@pytest.mark.parametrize("name", ["value_iteration", "policy_iteration"])
def test_sutton_barto_ab_grid(name: str) -> None:
    # Example 3.5 / Figure 3.5: A (0, 1) jumps to A' (4, 1) for +10, B (0, 3) to B' (2, 3)
    # for +5, -1 for bumping into the edge, gamma 0.9.
    env = {
        "layout": ["....."] * 5,
        "slip": 0.0,
        "step_reward": 0.0,
        "bump_reward": -1.0,
        "teleports": [
            {"cell": [0, 1], "to": [4, 1], "reward": 10.0},
            {"cell": [0, 3], "to": [2, 3], "reward": 5.0},
        ],
    }
    model = solve(name, {"env": env, "discount": 0.9})
    np.testing.assert_allclose(model.V[:5], [22.0, 24.4, 22.0, 19.4, 17.5], atol=0.05)


@pytest.mark.parametrize("name", ["policy_iteration", "value_iteration"])
def test_pymdptoolbox_forest(name: str) -> None:
    model = solve(name, {"env": MDP_ENV, "discount": 0.9}, datasets=uploaded(forest()))
    np.testing.assert_allclose(model.V, [26.244, 29.484, 33.484], atol=1e-3)
    assert model.policy.tolist() == [0, 0, 0]
    assert model.metadata["summary"]["converged"]


def test_cliff_walking_optimal_return_is_minus_13() -> None:
    model = solve("value_iteration", {"env": {"kind": "cliff_walking"}, "discount": 1.0})
    assert model.metadata["summary"]["start_value"] == pytest.approx(-13.0, abs=1e-9)
    assert model.action_names == ["up", "right", "down", "left"]


def test_taxi_solves_and_its_policy_delivers() -> None:
    model = solve("policy_iteration", {"env": {"kind": "taxi"}, "discount": 0.99})
    assert model.grid_shape == (5, 5, 5, 4) and model.Q.shape == (500, 6)
    mdp = ml.get_algorithm("policy_iteration").config.model_validate({"env": {"kind": "taxi"}})
    assert mdp.env.kind == "taxi"
    assert 5.0 < model.metadata["summary"]["start_value"] < 20.0  # +20 minus the trip


# -- agreement -----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dense", [True, False])
def test_policy_and_value_iteration_agree_on_random_mdps(seed: int, dense: bool) -> None:
    rng = np.random.default_rng(seed)
    n_states, n_actions = 60, 4
    P = rng.random((n_states, n_actions, n_states)) ** 8  # sparse-ish rows
    P /= P.sum(axis=2, keepdims=True)
    R = rng.normal(size=(n_states, n_actions))
    terminal = rng.random(n_states) < 0.1
    dynamics = P if dense else dp.as_sparse(P)
    vi = dp.value_iteration(
        dynamics, R, 0.95, terminal=terminal, tolerance=1e-10, max_iterations=100_000
    )
    pi = dp.policy_iteration(dynamics, R, 0.95, terminal=terminal)
    assert vi.converged and pi.converged
    np.testing.assert_allclose(vi.V, pi.V, atol=1e-9)
    exact = dp.policy_evaluation(P, R, pi.policy, 0.95, terminal=terminal)
    assert np.max(np.abs(vi.V - exact)) <= vi.error_bound + 1e-12


@pytest.mark.parametrize("sweeps", ["jacobi", "gauss_seidel"])
def test_tolerance_bounds_the_distance_to_v_star(sweeps: dp.Sweeps) -> None:
    mdp = build_grid(GridEnv(size=(30, 30), slip=0.2))
    exact = dp.policy_iteration(mdp.transitions, mdp.R, 0.99, terminal=mdp.fixed)
    for tolerance in (1e-2, 1e-4, 1e-6):
        vi = dp.value_iteration(
            mdp.transitions,
            mdp.R,
            0.99,
            terminal=mdp.fixed,
            tolerance=tolerance,
            max_iterations=100_000,
            sweeps=sweeps,
        )
        assert np.max(np.abs(vi.V - exact.V)) <= tolerance


def test_a_million_cell_grid_solves() -> None:
    model = solve(
        "value_iteration",
        {"env": {"kind": "grid", "size": [1000, 1000], "slip": 0.2}, "tolerance": 1e-6},
    )
    summary = model.metadata["summary"]
    assert summary["converged"] and summary["error_bound"] < 1e-6
    # Every step costs 0.04 and the goal pays 1, 1998 moves away at best.
    assert -4.0 < summary["start_value"] < 0.0
    # Near the goal the policy heads for it (far away, V differs by less than the tolerance).
    assert model.policy[999 * 1000 + 990] == 2 and model.policy[990 * 1000 + 999] == 1


# -- policies, worlds, warnings ----------------------------------------------------------------
def test_evaluating_a_solved_models_policy_gives_its_values() -> None:
    config = {"env": {"kind": "frozen_lake"}, "discount": 0.99}
    optimal = solve("policy_iteration", config)
    evaluated = solve(
        "policy_evaluation",
        {**config, "policy": {"kind": "model", "model": "lake@prod"}},
        models={"lake@prod": optimal},
    )
    np.testing.assert_allclose(evaluated.V, optimal.V, atol=1e-9)
    table = solve(
        "policy_evaluation",
        {**config, "policy": {"kind": "table", "actions": optimal.policy.tolist()}},
    )
    np.testing.assert_allclose(table.V, optimal.V, atol=1e-9)


def test_bad_policies_are_named() -> None:
    config = {"env": {"kind": "frozen_lake"}, "discount": 0.9}
    with pytest.raises(ConfigError, match="lists 3 states") as info:
        solve("policy_evaluation", {**config, "policy": {"kind": "table", "actions": [0, 1, 2]}})
    assert info.value.field == "policy.actions"
    with pytest.raises(ConfigError, match="was not provided"):
        solve("policy_evaluation", {**config, "policy": {"kind": "model", "model": "nope"}})
    with pytest.raises(ValidationError, match="sums to"):
        solve(
            "policy_evaluation",
            {**config, "policy": {"kind": "table", "probabilities": [[0.5, 0.2, 0.0, 0.0]]}},
        )


def test_walls_are_not_terminal() -> None:
    model = solve("value_iteration", {"env": {"layout": ["S#G"], "slip": 0.0}})
    assert model.terminal == [False, False, True] and model.wall == [False, True, False]


def test_discount_one_needs_an_end() -> None:
    with pytest.raises(ValidationError, match="needs a terminal cell"):
        ml.get_algorithm("value_iteration").config.model_validate(
            {"env": {"layout": ["S.."]}, "discount": 1.0}
        )
    with pytest.raises(ConfigError, match="terminal states"):
        solve("value_iteration", {"env": MDP_ENV, "discount": 1.0}, datasets=uploaded(forest()))


def test_running_out_of_iterations_warns_or_fails() -> None:
    config = {"env": {"kind": "frozen_lake"}, "discount": 0.99, "max_iterations": 3}
    hooks = RecordingHooks()
    model = solve("value_iteration", config, hooks=hooks)
    assert not model.metadata["summary"]["converged"]
    assert [code for _, code, _ in hooks.warnings] == ["not_converged"]
    with pytest.raises(TrainingAborted) as info:
        solve("value_iteration", {**config, "require_convergence": True})
    assert info.value.code == "not_converged"


def test_uploaded_mdp_reward_forms() -> None:
    arrays = forest()
    per_state = from_dataset({"P": arrays["P"], "R": np.array([0.0, 1.0, 4.0])})
    assert per_state.R.tolist() == [[0.0, 0.0], [1.0, 1.0], [4.0, 4.0]]
    R3 = np.zeros((3, 2, 3))
    R3[:, :, 0] = 5.0  # 5 for landing in state 0
    per_transition = from_dataset({"P": arrays["P"], "R": R3})
    np.testing.assert_allclose(per_transition.R, 5.0 * arrays["P"][:, :, 0])
