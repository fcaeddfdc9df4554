"""The trajectories kind: flat arrays with episode_lengths, JSON episodes, and every rule."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

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
    trajectories_arrays,
)

EPISODES = [
    {"states": [0, 1, 2], "actions": [1, 1, 0], "rewards": [0.0, 0.0, 1.0]},
    {"states": [3], "actions": [2], "rewards": [0.5]},
]


def test_npz_of_states() -> None:
    dataset = assert_round_trip("trajectories", npz(**trajectories_arrays()))
    arrays, summary = dataset.arrays, dataset.summary
    assert list(arrays) == [
        "states",
        "n_states",
        "actions",
        "n_actions",
        "episode_lengths",
        "rewards",
    ]
    assert arrays["states"].dtype == arrays["actions"].dtype == np.int64
    assert arrays["rewards"].dtype == np.float32 and arrays["episode_lengths"].dtype == np.int64
    assert summary["rows"] == 12 and summary["episodes"] == 3
    assert summary["n_states"] == int(arrays["states"].max()) + 1 and summary["n_actions"] == 2


def test_sizes_given_for_states_never_visited() -> None:
    arrays = trajectories_arrays() | {"n_states": np.array(50), "n_actions": np.array(4)}
    summary = assert_round_trip("trajectories", npz(**arrays)).summary
    assert summary["n_states"] == 50 and summary["n_actions"] == 4


def test_npz_of_observations_and_continuous_actions() -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "observations": rng.normal(size=(9, 4)),
        "actions": rng.normal(size=(9, 2)),
        "episode_lengths": np.array([2, 7]),
    }
    dataset = assert_round_trip("trajectories", npz(**arrays))
    assert dataset.arrays["observations"].dtype == np.float32
    assert dataset.summary["observation_dim"] == 4 and dataset.summary["action_dim"] == 2
    assert dataset.summary["discrete"] is False and "n_states" not in dataset.summary


def test_json_list_of_episodes() -> None:
    dataset = assert_round_trip("trajectories", json.dumps(EPISODES).encode())
    np.testing.assert_array_equal(dataset.arrays["states"], [0, 1, 2, 3])
    np.testing.assert_array_equal(dataset.arrays["actions"], [1, 1, 0, 2])
    np.testing.assert_array_equal(dataset.arrays["episode_lengths"], [3, 1])
    np.testing.assert_array_equal(dataset.arrays["rewards"], [0, 0, 1, 0.5])
    observed = [
        {"observations": [[0.0, 1.0], [1.0, 1.0]], "actions": [0, 1]},
        {"observations": [[2.0, 0.5]], "actions": [1]},
    ]
    dataset = assert_round_trip("trajectories", json.dumps(observed).encode())
    assert dataset.arrays["observations"].shape == (3, 2) and dataset.summary["episodes"] == 2


def test_json_object_of_flat_arrays() -> None:
    dataset = assert_round_trip("trajectories", as_json(trajectories_arrays()))
    assert dataset.summary["episodes"] == 3


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (put(episode_lengths=None), "episode_lengths", "need episode_lengths"),
        (put(observations=np.zeros((12, 2))), "states", "has both of states"),
        (put(states=None), "states", "has neither of states"),
        (put(n_obs=np.array(3)), "n_obs", "unexpected array 'n_obs'"),
        (put(n_actions=None, actions=np.zeros((11, 2))), "actions", "has 11 rows; the episodes"),
        (put(episode_lengths=np.array([4, 0, 8])), "episode_lengths", "episode_lengths[1] is 0"),
        (put(episode_lengths=np.array([4, -3, 11])), "episode_lengths", "[1] is -3"),
        (put(episode_lengths=np.array([4.5, 7.5])), "episode_lengths", "[0] is 4.5, not an int"),
        (put(episode_lengths=np.array([], int)), "episode_lengths", "there are no episodes"),
        (put(episode_lengths=np.array(12)), "episode_lengths", "has shape (); expected [E]"),
        (put(episode_lengths=np.array([4, 3, 4])), "states", "states has 12 rows; the episodes"),
        (put(actions=np.zeros(11, int)), "actions", "actions has 11 rows; the episodes"),
        (put(rewards=np.zeros(13)), "rewards", "rewards has 13 rows"),
        (poke("states", (5,), -1), "states", "states[5] is -1, not a non-negative integer"),
        (poke("states", (4,), 7), "states", "states[4] is 7, not < n_states = 6"),
        (poke("actions", (11,), 1.5), "actions", "actions[11] is 1.5, not an integer"),
        (poke("rewards", (7,), np.nan), "rewards", "rewards[7] is NaN (episode 2, step 0)"),
        (put(n_states=np.array(0)), "n_states", "n_states is 0"),
    ],
)
def test_rejections(change: Callable[[Arrays], Arrays], field: str, message: str) -> None:
    arrays = trajectories_arrays() | {"n_states": np.array(6), "n_actions": np.array(2)}
    rejects("trajectories", npz(**change(arrays)), field, message)


def test_errors_name_the_episode_and_step() -> None:
    arrays = trajectories_arrays()
    arrays["states"][4] = -2  # row 4 is step 0 of episode 1
    message = rejects("trajectories", npz(**arrays), "states", "states[4] is -2")
    assert message.endswith("(episode 1, step 0)")
    arrays = trajectories_arrays()
    arrays["observations"] = np.zeros((12, 3))
    arrays["observations"][11, 2] = np.inf
    del arrays["states"]
    message = rejects("trajectories", npz(**arrays), "observations", "observations[11, 2] is inf")
    assert message.endswith("(episode 2, step 4)")


def _episodes(*changes: tuple[int, str, Any]) -> bytes:
    episodes: list[Any] = [dict(episode) for episode in EPISODES]
    for index, key, value in changes:
        if key == "":
            episodes[index] = value
        elif value is None:
            del episodes[index][key]
        else:
            episodes[index][key] = value
    return json.dumps(episodes).encode()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (b"[]", "episode_lengths", "holds no episodes"),
        (b"[{}]", "actions", 'episodes[0] needs "actions" and one of "states" and "obs'),
        (b'[{"actions": [1]}]', "states", 'episodes[0] needs "actions" and one of'),
        (b'[{"actions": [1], "states": [0], "observations": [[0]]}]', "states", "one of"),
        (_episodes((1, "", [3, 2])), "episodes", "episodes[1] is not an object"),
        (_episodes((1, "", {"states": [], "actions": []})), "episodes", "episodes[1] has keys"),
        (_episodes((0, "done", [0, 0, 1])), "done", "episodes[0] has an unexpected key 'done'"),
        (_episodes((1, "rewards", None)), "episodes", "episodes[1] has keys ['actions', 'states']"),
        (_episodes((0, "actions", [1, 1])), "actions", "episodes[0].actions has 2 steps"),
        (_episodes((1, "states", 3)), "states", "episodes[1].states is a single number"),
        (_episodes((1, "actions", ["up"])), "actions", "episodes[1].actions holds <U2 values"),
        (_episodes((0, "states", [0, [1], 2])), "states", "not a rectangular array"),
        (
            _episodes((1, "states", []), (1, "actions", []), (1, "rewards", [])),
            "episode_lengths",
            "no steps",
        ),
        (_episodes((1, "states", [-1])), "states", "states[3] is -1, not a non-negative integer"),
    ],
)
def test_json_episode_rejections(data: bytes, field: str, message: str) -> None:
    rejects("trajectories", data, field, message)


def test_json_observation_rows_must_agree() -> None:
    ragged_rows = [{"observations": [[0.0, 1.0], [1.0]], "actions": [0, 1]}]
    rejects("trajectories", json.dumps(ragged_rows).encode(), "observations", "rectangular")
    widths = [
        {"observations": [[0.0, 1.0]], "actions": [0]},
        {"observations": [[0.0, 1.0, 2.0]], "actions": [0]},
    ]
    message = "episodes[1].observations has rows of shape (3,); episodes[0].observations has (2,)"
    rejects("trajectories", json.dumps(widths).encode(), "observations", message)
