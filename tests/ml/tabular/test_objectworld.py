"""Objectworld and binaryworld: their shared five-action dynamics, the seeds that fix a world,
features and true rewards checked against brute force, and value iteration on them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from ml.tabular import dp
from ml.tabular.mdp import TabularMDP
from ml.tabular.objectworld import (
    ACTION_NAMES_5,
    MOVES_5,
    BinaryWorldEnv,
    ObjectWorldEnv,
    absent_distance,
    blue_cells,
    build_binaryworld,
    build_objectworld,
    n_features,
    place_objects,
)

LEFT, DOWN, RIGHT, UP, STAY = range(5)
INTENDED = 1 - 0.3 + 0.3 / 5  # the chosen move's probability at random_move 0.3


def brute_distances(env: ObjectWorldEnv) -> np.ndarray:
    """D[s, j] by looping over every cell and object."""
    objects = place_objects(env)
    n, n_colours = env.size, env.n_colours
    D = np.full((n * n, 2 * n_colours), absent_distance(n))
    for s in range(n * n):
        for cell, inner, outer in zip(objects.cells, objects.inner, objects.outer, strict=True):
            d = math.dist(divmod(s, n), divmod(int(cell), n))
            D[s, inner] = min(D[s, inner], d)
            D[s, n_colours + outer] = min(D[s, n_colours + outer], d)
    return D


@pytest.mark.parametrize(
    "mdp",
    [build_objectworld(ObjectWorldEnv(size=5)), build_binaryworld(BinaryWorldEnv(size=5))],
    ids=["objectworld", "binaryworld"],
)
def test_dynamics_move_as_chosen_with_probability_one_minus_random_plus_a_fifth(
    mdp: TabularMDP,
) -> None:
    P = mdp.P  # P[s, a, s']
    assert mdp.action_names == ACTION_NAMES_5 == ("left", "down", "right", "up", "stay")
    np.testing.assert_allclose(P.sum(axis=2), 1.0)
    centre = 2 * 5 + 2
    for a, (dr, dc) in enumerate(MOVES_5):
        target = (2 + dr) * 5 + (2 + dc)
        assert P[centre, a, target] == pytest.approx(INTENDED)
        others = np.delete(P[centre, a], target)
        assert np.count_nonzero(others) == 4
        np.testing.assert_allclose(others[others > 0], 0.3 / 5)
    assert P[centre, STAY, centre] == pytest.approx(INTENDED)
    # Top-left corner: left and up leave the grid and stay, as does "stay".
    assert P[0, LEFT, 0] == pytest.approx(INTENDED + 2 * 0.3 / 5)
    assert P[0, RIGHT, 1] == pytest.approx(INTENDED)
    assert not mdp.terminal.any() and not mdp.wall.any()
    np.testing.assert_allclose(mdp.start, 1 / 25)
    assert mdp.shape == (5, 5) and mdp.layout is None


def test_without_random_moves_the_chosen_move_is_certain_and_the_edge_holds() -> None:
    P = build_objectworld(ObjectWorldEnv(size=4, random_move=0.0)).P
    assert P[0, LEFT, 0] == P[0, UP, 0] == 1.0
    assert P[15, RIGHT, 15] == P[15, DOWN, 15] == 1.0
    assert P[5, DOWN, 9] == P[5, STAY, 5] == 1.0
    uniform = build_objectworld(ObjectWorldEnv(size=4, random_move=1.0)).P
    np.testing.assert_allclose(uniform[5, :, [1, 4, 5, 6, 9]], 0.2)


def test_the_seed_is_the_world() -> None:
    env = ObjectWorldEnv(size=16)
    first, again = build_objectworld(env), build_objectworld(ObjectWorldEnv(size=16))
    np.testing.assert_array_equal(first.features, again.features)
    np.testing.assert_array_equal(first.state_reward, again.state_reward)
    assert (first.transitions != again.transitions).nnz == 0
    a, b = place_objects(env), place_objects(ObjectWorldEnv(size=16, seed=1))
    assert not np.array_equal(a.cells, b.cells)
    assert len(set(a.cells.tolist())) == env.object_count == 13  # distinct; max(4, 256 / 20)
    assert ObjectWorldEnv().object_count == 51
    blue = blue_cells(BinaryWorldEnv(size=8))
    np.testing.assert_array_equal(blue, blue_cells(BinaryWorldEnv(size=8)))
    assert not np.array_equal(blue, blue_cells(BinaryWorldEnv(size=8, seed=1)))


def test_continuous_features_are_distances_to_the_nearest_object_of_each_colour() -> None:
    env = ObjectWorldEnv(size=7, n_colours=3, n_objects=6, seed=3)
    mdp = build_objectworld(env)
    assert mdp.features is not None and mdp.features.dtype == np.float64
    assert mdp.features.shape == (49, 6) == (49, n_features(env))
    np.testing.assert_allclose(mdp.features, brute_distances(env))
    objects = place_objects(env)
    cell, inner = int(objects.cells[0]), int(objects.inner[0])
    assert mdp.features[cell, inner] == 0.0  # an object is at distance 0 from its own cell


def test_a_colour_no_object_has_is_far_away() -> None:
    env = ObjectWorldEnv(size=4, n_colours=8, n_objects=1)
    objects = place_objects(env)
    features = build_objectworld(env).features
    assert features is not None
    absent = np.setdiff1d(np.arange(8), objects.inner)
    np.testing.assert_allclose(features[:, absent], 4 * math.sqrt(2))
    assert features.max() == absent_distance(4) > math.dist((0, 0), (3, 3))


def test_discrete_features_are_monotone_in_d_and_agree_with_the_distances() -> None:
    continuous = ObjectWorldEnv(size=9, n_colours=3, n_objects=7, seed=5)
    discrete = continuous.model_copy(update={"features": "discrete"})
    D = build_objectworld(continuous).features
    F = build_objectworld(discrete).features
    assert D is not None and F is not None
    assert F.shape == (81, 2 * 3 * 9) == (81, n_features(discrete))
    assert set(np.unique(F)) <= {0.0, 1.0}
    within = F.reshape(81, 6, 9)  # within[s, j, d - 1]
    assert (np.diff(within, axis=2) >= 0).all()  # once within d, within every larger d
    d = np.arange(1, 10)
    np.testing.assert_array_equal(within, (D[:, :, None] <= d).astype(np.float64))
    np.testing.assert_array_equal(within[:, :, -1], D <= 9)


def test_objectworld_reward_follows_levines_rule() -> None:
    env = ObjectWorldEnv(size=12, n_objects=14, seed=2)
    mdp = build_objectworld(env)
    D = brute_distances(env)
    near_0, near_1 = D[:, 2] <= 3, D[:, 3] <= 2  # outer colours 0 and 1
    expected = [1.0 if a and b else -1.0 if a else 0.0 for a, b in zip(near_0, near_1, strict=True)]
    np.testing.assert_array_equal(mdp.state_reward, expected)
    np.testing.assert_array_equal(mdp.R, np.repeat(mdp.state_reward[:, None], 5, axis=1))


def test_the_default_world_is_a_meaningful_benchmark() -> None:
    mdp = build_objectworld(ObjectWorldEnv())
    assert mdp.shape == (32, 32) and mdp.features is not None
    assert mdp.features.shape == (1024, 4)
    assert set(np.unique(mdp.state_reward)) == {-1.0, 0.0, 1.0}


def test_binaryworld_features_are_the_3x3_neighbourhood_and_the_edge_is_red() -> None:
    env = BinaryWorldEnv(size=6, seed=4)
    mdp = build_binaryworld(env)
    blue = blue_cells(env)
    assert mdp.features is not None and mdp.features.shape == (36, 9) == (36, n_features(env))
    for s in range(36):
        row, col = divmod(s, 6)
        expected = [
            blue[r, c] if 0 <= r < 6 and 0 <= c < 6 else 0.0
            for r in range(row - 1, row + 2)
            for c in range(col - 1, col + 2)
        ]
        np.testing.assert_array_equal(mdp.features[s], expected)
        count = sum(expected)
        assert mdp.state_reward[s] == (1.0 if count == 4 else -1.0 if count == 5 else 0.0)
    np.testing.assert_array_equal(mdp.features[:, 4], blue.reshape(-1))  # the cell itself
    np.testing.assert_array_equal(mdp.features[0, [0, 1, 2, 3, 6]], 0.0)  # beyond the corner
    all_blue = build_binaryworld(BinaryWorldEnv(size=4, blue_probability=0.999_999))
    assert all_blue.features is not None
    np.testing.assert_array_equal(all_blue.features.sum(axis=1).reshape(4, 4)[0], [4, 6, 6, 4])
    assert all_blue.state_reward[0] == 1.0  # a corner sees 4 blue cells


def test_a_large_world_builds() -> None:
    env = ObjectWorldEnv(size=256)
    mdp = build_objectworld(env)
    assert mdp.n_states == 65_536 and mdp.n_actions == 5
    assert mdp.features is not None and mdp.features.shape == (65_536, 4)
    assert mdp.R.shape == (65_536, 5) and mdp.state_reward.shape == (65_536,)
    np.testing.assert_allclose(mdp.transitions.sum(axis=1), 1.0)


def test_worlds_that_cannot_be_built_are_rejected() -> None:
    with pytest.raises(ValidationError, match="distinct cells"):
        ObjectWorldEnv(size=4, n_objects=17)
    with pytest.raises(ValidationError, match="discrete features"):
        ObjectWorldEnv(size=256, features="discrete")
    with pytest.raises(ValidationError):
        ObjectWorldEnv(speed=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        BinaryWorldEnv(blue_probability=1.0)


def test_value_iteration_heads_for_the_positive_cells() -> None:
    mdp = build_objectworld(ObjectWorldEnv(size=16))
    result = dp.value_iteration(
        mdp.transitions, mdp.R, 0.9, terminal=mdp.terminal, tolerance=1e-6, max_iterations=10_000
    )
    assert result.converged
    reward = mdp.state_reward.reshape(16, 16)
    best = np.unravel_index(np.argmax(result.V), (16, 16))
    around = reward[max(best[0] - 1, 0) : best[0] + 2, max(best[1] - 1, 0) : best[1] + 2]
    assert (around == 1.0).any()
    assert result.V[mdp.state_reward == 1.0].mean() > result.V[mdp.state_reward == -1.0].mean()
    # Following the greedy moves from any cell ends on a +1 cell.
    row, col = np.divmod(np.arange(256), 16)
    for _ in range(32):
        move = MOVES_5[result.policy[row * 16 + col]]
        row = np.clip(row + move[:, 0], 0, 15)
        col = np.clip(col + move[:, 1], 0, 15)
    assert (mdp.state_reward[row * 16 + col] == 1.0).all()
