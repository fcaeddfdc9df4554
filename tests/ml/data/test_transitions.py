"""The transitions kind: discrete and continuous actions, flags, and every rejection rule."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tests.ml.data.builders import (
    Arrays,
    as_json,
    assert_round_trip,
    npz,
    poke,
    put,
    rejects,
    transitions_arrays,
)


def test_discrete_actions_infer_n_actions() -> None:
    dataset = assert_round_trip("transitions", npz(**transitions_arrays()))
    arrays = dataset.arrays
    assert list(arrays) == [
        "observations",
        "actions",
        "n_actions",
        "rewards",
        "next_observations",
        "terminated",
    ]
    assert arrays["observations"].dtype == np.float32 and arrays["rewards"].dtype == np.float32
    assert arrays["actions"].dtype == np.int64 and arrays["terminated"].dtype == np.bool_
    assert arrays["n_actions"].shape == () and int(arrays["n_actions"]) == 3
    summary = dataset.summary
    assert summary["rows"] == 20 and summary["observation_dim"] == 2
    assert summary["discrete"] is True and summary["n_actions"] == 3
    assert summary["arrays"]["n_actions"] == {"shape": [], "dtype": "int64"}


def test_n_actions_given_and_truncated_flags() -> None:
    arrays = transitions_arrays()
    arrays |= {"n_actions": np.array([7]), "truncated": np.zeros(20, np.int8)}
    arrays["actions"] = arrays["actions"].astype(np.float64)  # integral floats: discrete
    dataset = assert_round_trip("transitions", npz(**arrays))
    assert dataset.summary["n_actions"] == 7 and dataset.arrays["truncated"].dtype == np.bool_
    assert dataset.arrays["actions"].dtype == np.int64


def test_continuous_actions() -> None:
    dataset = assert_round_trip("transitions", npz(**transitions_arrays(discrete=False)))
    assert dataset.arrays["actions"].dtype == np.float32 and "n_actions" not in dataset.arrays
    assert dataset.summary["discrete"] is False and dataset.summary["action_dim"] == 2
    one = transitions_arrays(discrete=False)
    one["actions"] = one["actions"][:, 0]  # 1-D floats: one action dimension
    assert assert_round_trip("transitions", npz(**one)).arrays["actions"].shape == (20, 1)


def test_json_object_and_image_observations() -> None:
    assert_round_trip("transitions", as_json(transitions_arrays()))
    arrays = transitions_arrays()
    arrays["observations"] = np.zeros((20, 3, 2, 2))
    arrays["next_observations"] = np.ones((20, 3, 2, 2))
    dataset = assert_round_trip("transitions", npz(**arrays))
    assert dataset.summary["observation_dim"] == 12
    assert dataset.summary["observation_shape"] == [3, 2, 2]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (put(terminated=None), "terminated", "transitions datasets need terminated"),
        (put(dones=np.zeros(20)), "dones", "unexpected array 'dones'"),
        (poke("rewards", (17,), np.nan), "rewards", "rewards[17] is NaN"),
        (poke("observations", (4, 1), np.inf), "observations", "observations[4, 1] is inf"),
        (poke("next_observations", (0, 0), np.nan), "next_observations", "[0, 0] is NaN"),
        (poke("actions", (3,), -1), "actions", "actions[3] is -1, not a non-negative integer"),
        (poke("terminated", (5,), 2), "terminated", "terminated[5] is 2, not 0 or 1"),
        (poke("terminated", (6,), np.nan), "terminated", "terminated[6] is NaN, not 0 or 1"),
        (put(rewards=np.zeros(19)), "rewards", "rewards has 19 rows; observations has 20"),
        (
            put(rewards=np.zeros((20, 2))),
            "rewards",
            "rewards has shape (20, 2); expected [20]",
        ),
        (put(rewards=np.array(1.0)), "rewards", "rewards is a single number"),
        (put(terminated=np.zeros(21)), "terminated", "terminated has 21 rows"),
        (put(truncated=np.zeros(3)), "truncated", "truncated has 3 rows"),
        (
            put(actions=np.zeros(18, int)),
            "actions",
            "actions has 18 rows; observations has 20",
        ),
        (put(actions=np.zeros((20, 2), int)), "actions", "actions has shape (20, 2)"),
        (put(actions=np.zeros((20, 2, 2))), "actions", "up to 2 dimensions"),
        (put(actions=np.array(["left"] * 20)), "actions", "actions holds <U4 values"),
        (put(next_observations=np.zeros((20, 3))), "next_observations", "shape (20, 3)"),
        (put(next_observations=np.zeros((19, 2))), "next_observations", "(20, 2)"),
        (put(observations=np.zeros((0, 2))), "observations", "observations has no rows"),
        (put(observations=np.array(0.0)), "observations", "observations has shape ()"),
        (put(n_actions=np.array(2)), "actions", "actions[0] is 2, not < n_actions = 2"),
        (put(n_actions=np.array(0)), "n_actions", "n_actions is 0; it must be between 1"),
        (put(n_actions=np.array([2, 3])), "n_actions", "expected a single integer"),
        (put(n_actions=np.array(2.5)), "n_actions", "n_actions is 2.5, not an integer"),
        (put(n_actions=np.array(2**40)), "n_actions", "must be between 1 and 2147483647"),
        (
            put(n_actions=np.array(9), actions=np.full(20, 0.5)),
            "actions",
            "0.5, not an integer",
        ),
    ],
)
def test_rejections(change: Callable[[Arrays], Arrays], field: str, message: str) -> None:
    rejects("transitions", npz(**change(transitions_arrays())), field, message)
