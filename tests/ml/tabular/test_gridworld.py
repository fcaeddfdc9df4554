"""Grid worlds: layout validation, the dynamics of text grids, and FrozenLake's exact table."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from ml.core.errors import QueryError
from ml.core.validation import grid_states
from ml.tabular.gridworld import (
    MAX_CELLS,
    EnvSpec,
    FrozenLakeEnv,
    GridEnv,
    build_frozen_lake,
    build_grid,
)

LEFT, DOWN, RIGHT, UP = 0, 1, 2, 3


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (["S..", ".G"], "rectangular"),
        (["S.x", "..G"], "unknown cell"),
        (["...", "..G"], "exactly one start"),
        (["S.S", "..G"], "exactly one start"),
        (["S..", "..."], "at least one goal"),
        ([""], "must not be empty"),
        (["S" + "." * 50, "G" + "." * 50], "at most 50x50"),
        (["S" + "." * 39] + ["." * 40] * 38 + ["." * 39 + "G"], f"at most {MAX_CELLS} cells"),
    ],
)
def test_bad_layouts_are_rejected_with_the_field(layout: list[str], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        GridEnv(layout=layout)
    error = info.value.errors()[0]
    assert error["loc"] == ("layout",)
    assert message in error["msg"]


def test_slip_and_rewards_are_bounded() -> None:
    with pytest.raises(ValidationError):
        GridEnv(slip=1.0)
    with pytest.raises(ValidationError):
        GridEnv(step_reward=float("nan"))
    with pytest.raises(ValidationError):
        GridEnv(unknown=1)  # type: ignore[call-arg]


def test_env_union_is_discriminated_by_kind() -> None:
    adapter = TypeAdapter(EnvSpec)
    assert isinstance(adapter.validate_python({"kind": "frozen_lake"}), FrozenLakeEnv)
    assert isinstance(adapter.validate_python({"kind": "grid", "layout": ["SG"]}), GridEnv)
    with pytest.raises(ValidationError):
        adapter.validate_python({"kind": "maze"})


def test_grid_dynamics_slip_walls_and_edges() -> None:
    mdp = build_grid(GridEnv(layout=["S#G", "..."], slip=0.2, step_reward=-0.1))
    assert mdp.n_states == 6 and mdp.n_actions == 4 and mdp.shape == (2, 3)
    np.testing.assert_allclose(mdp.P.sum(axis=2), 1.0)
    # From S (0, 0): right hits the wall, up/down are the slips (up: off the grid, down: (1, 0)).
    np.testing.assert_allclose(mdp.P[0, RIGHT], [0.9, 0, 0, 0.1, 0, 0])
    # Down from S succeeds with 0.8; slips go left (off the grid: stay) or right (the wall).
    np.testing.assert_allclose(mdp.P[0, DOWN], [0.2, 0, 0, 0.8, 0, 0])
    # Up from (1, 2) enters the goal; expected reward 0.8 * 1 + 0.1 * -0.1 (stay) + 0.1 * -0.1.
    assert mdp.P[5, UP, 2] == pytest.approx(0.8)
    assert mdp.R[5, UP] == pytest.approx(0.8 - 0.02)
    assert mdp.terminal.tolist() == [False, True, True, False, False, False]  # wall, goal
    assert mdp.wall.tolist() == [False, True, False, False, False, False]
    assert mdp.start.tolist() == [1, 0, 0, 0, 0, 0]
    assert mdp.state_reward.tolist() == [-0.1, 0.0, 1.0, -0.1, -0.1, -0.1]
    assert mdp.R[2].tolist() == [0.0] * 4  # nothing after a terminal state
    assert mdp.to_grid(np.arange(6)) == [[0, 1, 2], [3, 4, 5]]


def test_hazards_are_terminal_with_their_reward() -> None:
    mdp = build_grid(GridEnv(layout=["SHG"], slip=0.0, hazard_reward=-5.0))
    assert mdp.terminal.tolist() == [False, True, True]
    assert mdp.R[0, RIGHT] == pytest.approx(-5.0)


@pytest.mark.parametrize(("map_name", "slippery"), [("4x4", True), ("8x8", True), ("4x4", False)])
def test_frozen_lake_matches_gymnasium_table(map_name: str, slippery: bool) -> None:
    mdp = build_frozen_lake(FrozenLakeEnv(map_name=map_name, is_slippery=slippery))
    env = gym.make("FrozenLake-v1", map_name=map_name, is_slippery=slippery)
    table = env.unwrapped.P  # type: ignore[attr-defined]
    for s in range(mdp.n_states):
        for a in range(mdp.n_actions):
            expected = np.zeros(mdp.n_states)
            for prob, nxt, _reward, _done in table[s][a]:
                expected[nxt] += prob
            np.testing.assert_array_equal(mdp.P[s, a], expected)
            if not mdp.terminal[s]:
                reward = sum(p * r for p, _, r, _ in table[s][a])
                assert mdp.R[s, a] == pytest.approx(reward)
    assert mdp.layout[0].startswith("S") and mdp.layout[-1].endswith("G")
    assert mdp.start[0] == 1.0


def test_grid_states_accepts_indices_and_pairs() -> None:
    assert grid_states([0, [1, 2], 5], (2, 3)).tolist() == [0, 5, 5]
    for bad in ([6], [[2, 0]], [[0, -1]], ["a"], [], None, [True]):
        with pytest.raises(QueryError):
            grid_states(bad, (2, 3))
