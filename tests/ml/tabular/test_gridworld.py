"""Grid worlds: layout validation, the dynamics of text grids (teleports, bumps, large open
rooms), and the toy-text worlds read from Gymnasium's exact tables."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from ml.core.errors import QueryError
from ml.core.validation import grid_states
from ml.tabular.gridworld import MAX_CELLS, MAX_SIDE, GridEnv, Teleport, build_grid
from ml.tabular.toy_text import CliffWalkingEnv, FrozenLakeEnv, TaxiEnv, build_toy_text
from ml.tabular.worlds import EnvSpec

LEFT, DOWN, RIGHT, UP = 0, 1, 2, 3


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (["S..", ".G"], "rectangular"),
        (["S.x", "..G"], "unknown cell"),
        (["###", "###"], "no cell an agent can be in"),
        ([""], "must not be empty"),
        (["S" + "." * MAX_SIDE, "G" + "." * MAX_SIDE], f"at most {MAX_SIDE} rows"),
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
    assert mdp.terminal.tolist() == [False, False, True, False, False, False]  # the goal
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
    mdp = build_toy_text(FrozenLakeEnv(map_name=map_name, is_slippery=slippery))
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
    assert mdp.layout is not None
    assert mdp.layout[0].startswith("S") and mdp.layout[-1].endswith("G")
    assert mdp.start[0] == 1.0


def test_grid_states_accepts_indices_and_pairs() -> None:
    assert grid_states([0, [1, 2], 5], (2, 3)).tolist() == [0, 5, 5]
    for bad in ([6], [[2, 0]], [[0, -1]], ["a"], [], None, [True]):
        with pytest.raises(QueryError):
            grid_states(bad, (2, 3))


def test_layouts_without_start_or_goal_and_size_limits() -> None:
    # No S: every free cell may start; no G: a continuing task (solved with discount < 1).
    mdp = build_grid(GridEnv(layout=["..", ".#"]))
    assert mdp.start.tolist() == [1 / 3, 1 / 3, 1 / 3, 0.0] and not mdp.terminal.any()
    with pytest.raises(ValidationError, match="either a layout or a size"):
        GridEnv(layout=["SG"], size=(3, 3))
    with pytest.raises(ValidationError, match=f"at most {MAX_CELLS} cells"):
        GridEnv(size=(MAX_SIDE, MAX_SIDE + 1))


def test_open_room_of_a_million_cells_builds_sparse() -> None:
    mdp = build_grid(GridEnv(size=(1000, 1000)))
    assert mdp.n_states == 10**6 and mdp.transitions.nnz <= 12 * 10**6
    assert mdp.start[0] == 1.0 and mdp.terminal[-1] and mdp.terminal.sum() == 1
    np.testing.assert_allclose(mdp.transitions.sum(axis=1), 1.0)


def test_teleports_and_bump_rewards() -> None:
    env = GridEnv(
        layout=[".....", "....."],
        slip=0.0,
        step_reward=0.0,
        bump_reward=-1.0,
        teleports=[Teleport(cell=(0, 1), to=(1, 4), reward=10.0)],
    )
    mdp = build_grid(env)
    for a in range(4):
        assert mdp.P[1, a, 9] == 1.0 and mdp.R[1, a] == 10.0  # any action jumps
    assert mdp.R[0, LEFT] == -1.0 and mdp.P[0, LEFT, 0] == 1.0  # off the grid: bump, stay
    assert mdp.R[0, DOWN] == 0.0
    with pytest.raises(ValidationError, match="off the grid"):
        GridEnv(layout=["S.G"], teleports=[Teleport(cell=(0, 1), to=(3, 0))])
    with pytest.raises(ValidationError, match="wall"):
        GridEnv(layout=["S#G"], teleports=[Teleport(cell=(0, 0), to=(0, 1))])


@pytest.mark.parametrize(
    ("env", "states", "actions", "terminal"),
    [(TaxiEnv(), 500, 6, 4), (CliffWalkingEnv(), 48, 4, 1), (FrozenLakeEnv(), 16, 4, 5)],
)
def test_toy_text_worlds_follow_gymnasium(
    env: TaxiEnv | CliffWalkingEnv | FrozenLakeEnv, states: int, actions: int, terminal: int
) -> None:
    mdp = build_toy_text(env)
    assert (mdp.n_states, mdp.n_actions, int(mdp.terminal.sum())) == (states, actions, terminal)
    assert int(np.prod(mdp.shape)) == states and len(mdp.action_names) == actions
    np.testing.assert_allclose(mdp.transitions.sum(axis=1), 1.0)
    assert mdp.start.sum() == pytest.approx(1.0)
