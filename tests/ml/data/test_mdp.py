"""The mdp kind: dense and sparse P, the three reward forms, terminal and start, every rule."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from ml.tabular.dp import value_iteration
from tests.ml.data.builders import (
    Arrays,
    as_json,
    assert_round_trip,
    mdp_arrays,
    npz,
    npz_compressed,
    poke,
    put,
    rejects,
    sparse_mdp,
)


def test_dense_npz() -> None:
    arrays = mdp_arrays()
    dataset = assert_round_trip("mdp", npz(**arrays))
    assert dataset.arrays["P"].dtype == dataset.arrays["R"].dtype == np.float64
    np.testing.assert_array_equal(dataset.arrays["P"], arrays["P"])
    assert dataset.summary == {
        "rows": 8,
        "arrays": {
            "P": {"shape": [4, 2, 4], "dtype": "float64"},
            "R": {"shape": [4, 2], "dtype": "float64"},
        },
        "n_states": 4,
        "n_actions": 2,
        "reward": "R[s, a]",
    }


@pytest.mark.parametrize(
    ("shape", "form"), [((4,), "R[s]"), ((4, 2), "R[s, a]"), ((4, 2, 4), "R[s, a, s']")]
)
def test_reward_forms_are_kept(shape: tuple[int, ...], form: str) -> None:
    arrays = mdp_arrays() | {"R": np.arange(np.prod(shape), dtype=np.int32).reshape(shape)}
    dataset = assert_round_trip("mdp", npz(**arrays))
    assert dataset.summary["reward"] == form and dataset.arrays["R"].shape == shape


def test_terminal_and_start_in_json() -> None:
    arrays = mdp_arrays() | {"terminal": [False, True, False, False], "start": [0.5, 0, 0.5, 0]}
    dataset = assert_round_trip("mdp", as_json(arrays))
    assert dataset.arrays["terminal"].dtype == np.bool_ and dataset.summary["terminal_states"] == 1
    np.testing.assert_array_equal(dataset.arrays["start"], [0.5, 0, 0.5, 0])


def test_sparse_triplets_become_dense_with_absorbing_terminal_states() -> None:
    for data in (npz(**sparse_mdp()), npz_compressed(**sparse_mdp()), as_json(sparse_mdp())):
        dataset = assert_round_trip("mdp", data)
        P = dataset.arrays["P"]  # P[s, a, s']
        assert P.shape == (3, 2, 3) and list(dataset.arrays) == ["P", "R", "terminal"]
        np.testing.assert_array_equal(P[:, 0], [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
        np.testing.assert_array_equal(P[:, 1], [[0, 1, 0], [0, 0, 1], [0, 0, 1]])
    result = value_iteration(P, P @ dataset.arrays["R"], 0.9, terminal=dataset.arrays["terminal"])
    np.testing.assert_array_equal(result.policy[:2], [1, 1])  # the solver takes it as it is


def test_duplicate_triplets_add_up() -> None:
    arrays = sparse_mdp()
    arrays |= {
        "s": np.r_[arrays["s"], 0],
        "a": np.r_[arrays["a"], 0],
        "next_s": np.r_[arrays["next_s"], 1],
        "p": np.r_[0.25, arrays["p"][1:], 0.75],
    }
    P = assert_round_trip("mdp", npz(**arrays)).arrays["P"]
    np.testing.assert_array_equal(P[0, 0], [0.25, 0.75, 0])


def test_rounding_is_tolerated_and_clipped_but_sums_are_kept() -> None:
    arrays = mdp_arrays()
    arrays["P"][0, 0] = [0.5 + 1e-7, 0.5 - 1e-7, -1e-8, 0.0]
    arrays["P"][1, 1] = np.float32(arrays["P"][1, 1]).astype(np.float64)
    P = assert_round_trip("mdp", npz(**arrays)).arrays["P"]
    assert P.min() == 0.0 and P[0, 0, 0] == 0.5 + 1e-7


def _sizes_too_big(arrays: Arrays) -> Arrays:
    return arrays | {"n_states": np.array(200), "n_actions": np.array(4)}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (put(P=None), "P", "mdp datasets need P (arrays: P, R, optional terminal"),
        (put(gamma=np.array(0.9)), "gamma", "unexpected array 'gamma'"),
        (poke("P", (3, 1, 0), np.nan), "P", "P[3, 1, 0] is NaN"),
        (poke("P", (0, 1, 2), -0.1), "P", "P[0, 1, 2] is -0.1, not a probability in [0, 1]"),
        (poke("P", (2, 0, 2), 1.5), "P", "P[2, 0, 2] is 1.5, not a probability"),
        (put(P=np.full((4, 2, 4), 0.2)), "P", "P[0, 0] sums to 0.8, not 1"),
        (put(P=np.zeros((4, 2, 4))), "P", "P[0, 0] sums to 0, not 1 (no transitions;"),
        (put(P=np.full((4, 2, 3), 1 / 3)), "P", "P has shape (4, 2, 3); expected"),
        (put(P=np.zeros((0, 2, 0))), "P", "at least one state and one action"),
        (put(P=np.full((4, 4), 0.25)), "P", "P has shape (4, 4); expected P[s, a, s']"),
        (put(R=np.zeros(3)), "R", "R has shape (3,); expected R[s] (4,), R[s, a] (4, 2)"),
        (put(R=np.zeros((2, 4))), "R", "R[s, a, s'] (4, 2, 4)"),
        (poke("R", (1, 1), np.inf), "R", "R[1, 1] is inf"),
        (put(R=np.array(["a"] * 4)), "R", "R holds <U1 values"),
        (put(terminal=np.zeros(3)), "terminal", "terminal has 3 rows; P has 4"),
        (put(terminal=np.array([0, 2, 0, 0])), "terminal", "terminal[1] is 2, not 0 or 1"),
        (put(start=np.full(4, 0.2)), "start", "start sums to 0.8, not 1"),
        (put(start=np.array([1.5, -0.5, 0, 0])), "start", "start[0] is 1.5, not a probability"),
        (put(start=np.full(3, 1 / 3)), "start", "start has shape (3,); expected [4]"),
        (put(start=np.array([np.nan, 1, 0, 0])), "start", "start[0] is NaN"),
    ],
)
def test_dense_rejections(change: Callable[[Arrays], Arrays], field: str, message: str) -> None:
    rejects("mdp", npz(**change(mdp_arrays())), field, message)


def test_a_terminal_state_may_list_no_transitions_but_others_may_not() -> None:
    arrays = mdp_arrays()
    arrays["P"][2] = 0.0
    rejects("mdp", npz(**arrays), "P", "P[2, 0] sums to 0, not 1")
    P = assert_round_trip("mdp", npz(**arrays, terminal=[0, 0, 1, 0])).arrays["P"]
    np.testing.assert_array_equal(P[2], [[0, 0, 1, 0], [0, 0, 1, 0]])


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (put(n_states=None), "n_states", "mdp datasets need n_states"),
        (put(P=np.zeros((3, 2, 3))), "P", "either dense or as triplets"),
        (poke("s", (2,), 3), "s", "s[2] is 3, not < n_states = 3"),
        (poke("a", (1,), 2), "a", "a[1] is 2, not < n_actions = 2"),
        (poke("next_s", (3,), -1), "next_s", "next_s[3] is -1, not a non-negative integer"),
        (poke("p", (0,), 1.2), "p", "p[0] is 1.2, not a probability in [0, 1]"),
        (poke("p", (1,), np.nan), "p", "p[1] is NaN"),
        (poke("p", (1,), 0.5), "P", "P[0, 1] sums to 0.5, not 1"),
        (put(p=np.ones(3)), "p", "p has 3 rows; s has 4"),
        (put(a=np.zeros((4, 1), int)), "a", "a has shape (4, 1); expected [4]"),
        (put(s=np.array([], int)), "s", "s is empty"),
        (put(s=np.array(0)), "s", "s has shape (); expected [m]"),
        (put(n_actions=np.array([2, 2])), "n_actions", "expected a single integer"),
        (put(n_states=np.array(0)), "n_states", "n_states is 0; it must be between 1"),
        (put(R=np.zeros(4)), "R", "R has shape (4,); expected R[s] (3,)"),
        (_sizes_too_big, "n_states", "a dense P for 200 states and 4 actions is 1280000 bytes"),
    ],
)
def test_sparse_rejections(change: Callable[[Arrays], Arrays], field: str, message: str) -> None:
    rejects("mdp", npz(**change(sparse_mdp())), field, message)


def test_dense_size_limit_uses_max_bytes() -> None:
    arrays = sparse_mdp() | {"n_states": np.array(100), "R": np.zeros(100)}
    arrays["terminal"] = np.r_[0, 0, np.ones(98)]  # states 2.. list nothing: absorbing
    dataset = assert_round_trip("mdp", npz(**arrays))  # dense P: 100 * 2 * 100 * 8 = 160 kB
    assert dataset.summary["n_states"] == 100 and dataset.summary["terminal_states"] == 98
    message = "a dense P for 100 states and 2 actions is 160000 bytes; the limit is 100000"
    rejects("mdp", npz(**arrays), "n_states", message, limit=100_000)
