"""The `trajectories` kind: expert demonstrations for inverse RL, episode by episode.

Episodes differ in length, and a ragged array would need pickle, so episodes are stored flat:
every per-step array has one row per step of every episode, back to back, and
`episode_lengths[e]` says how many of those rows belong to episode e. Canonical arrays:

    states:          int64 [N], with n_states: int64 []     # tabular: s_t
      or observations: float32 [N, d] (or [N, ...])         # features of s_t
    actions:         int64 [N], with n_actions: int64 []    # a_t, discrete
      or             float32 [N, action_dim]                # continuous
    episode_lengths: int64 [E], positive, summing to N
    rewards:         float32 [N], optional                  # r_t, when known

Row i is step t = i - sum(episode_lengths[:e]) of episode e; an episode's final state is
the state of its last row (a demonstration that ends in s_T without an action drops s_T).
Errors in per-step arrays name the episode and the step as well as the row.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from ml.core.errors import DatasetError
from ml.data.formats import Arrays, Format, KindSpec, read_arrays, read_json
from ml.data.validate import (
    RowError,
    actions,
    check_names,
    check_ndim,
    check_rows,
    features,
    index_column,
    integers,
    numeric,
    reject_first,
    summarize,
    vector,
)

STEP_ARRAYS = ("states", "observations", "actions", "rewards")  # keys of a JSON episode

DESCRIPTION = (
    "Demonstrations for inverse RL, stored flat with no ragged arrays. An .npz (or a JSON "
    "object of arrays) with either `states` [N] (integer states of a tabular MDP, "
    "0..n_states-1, `n_states` inferred or given as a scalar array) or `observations` [N, d] "
    "floats, plus `actions` [N] (integers, discrete, `n_actions` inferred or given; or floats "
    "[N, action_dim], continuous), `episode_lengths` [E] (positive integers summing to N: the "
    "first episode_lengths[0] rows are episode 0, and so on) and optionally `rewards` [N]. "
    'Or a JSON list of episodes, e.g. [{"states": [0, 1, 5], "actions": [2, 2, 1]}, ...], '
    'each with "states" or "observations" (a list of lists), "actions" and optionally '
    '"rewards", all of one length. One action per state: drop the final state if it has '
    "none. Stored as int64 states and discrete actions, float32 observations and rewards."
)


def read(fmt: Format, data: bytes, max_bytes: int | None) -> Arrays:
    if fmt == "json":
        document = read_json(data)
        if isinstance(document, list):
            return _from_episodes(document)
    return read_arrays(fmt, data, max_bytes, "trajectories")


def canonical(raw: Mapping[str, Any]) -> tuple[Arrays, dict[str, Any]]:
    """Validate the flat arrays and return them, and the summary, in canonical form."""
    check_names(raw, "trajectories", *_expected(raw))
    lengths = _episode_lengths(raw["episode_lengths"])  # episode_lengths[E]
    n = int(lengths.sum())
    reference = "the episodes (sum of episode_lengths)"
    with _episode_and_step(lengths):
        arrays, facts = _state_arrays(raw, n, reference)
        action_arrays, action_facts = actions(raw, n, reference)
        arrays |= action_arrays
        arrays["episode_lengths"] = lengths
        if "rewards" in raw:
            arrays["rewards"] = vector("rewards", raw["rewards"], n, reference)  # r[N]
    facts["longest_episode"] = int(lengths.max())
    return arrays, summarize(arrays, n, episodes=len(lengths), **facts, **action_facts)


def _state_arrays(raw: Mapping[str, Any], n: int, reference: str) -> tuple[Arrays, dict[str, Any]]:
    """states[N] with n_states (tabular), or observations[N, d] (features)."""
    if "states" in raw:
        states, n_states = index_column(raw, "states", "n_states", n, reference)  # s[N]
        arrays = {"states": states, "n_states": np.array(n_states, dtype=np.int64)}
        return arrays, {"n_states": n_states}
    observations = numeric("observations", raw["observations"])
    check_rows("observations", observations, n, reference)
    observations = features("observations", observations)  # observations[N, d]
    facts = {
        "observation_dim": math.prod(observations.shape[1:]),
        "observation_shape": [int(d) for d in observations.shape[1:]],
    }
    return {"observations": observations}, facts


def _expected(raw: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Required and optional arrays: states with n_states, or observations; not both."""
    if ("states" in raw) == ("observations" in raw):
        found = "both" if "states" in raw else "neither"
        message = f"this file has {found} of states (integers) and observations (floats)"
        raise DatasetError(message + "; trajectories need exactly one", field="states")
    first = ("states",) if "states" in raw else ("observations",)
    optional = ("n_states",) if "states" in raw else ()
    return (*first, "actions", "episode_lengths"), (*optional, "n_actions", "rewards")


def _episode_lengths(value: Any) -> np.ndarray:
    array = numeric("episode_lengths", value)
    check_ndim("episode_lengths", array, (1,), "[E], one length per episode")
    if len(array) == 0:
        raise DatasetError(
            "episode_lengths is empty: there are no episodes", field="episode_lengths"
        )
    lengths = integers("episode_lengths", array)
    reject_first("episode_lengths", lengths == 0, lengths, ": every episode has a step")
    return lengths


@contextmanager
def _episode_and_step(lengths: np.ndarray) -> Iterator[None]:
    """Add "(episode e, step t)" to an error about row i of a per-step array."""
    try:
        yield
    except RowError as error:
        ends = np.cumsum(lengths)  # ends[e] = first row after episode e
        if not error.index or error.index[0] >= ends[-1]:
            raise
        row = error.index[0]
        episode = int(np.searchsorted(ends, row, side="right"))
        step = row - (int(ends[episode - 1]) if episode else 0)
        message = f"{error.message} (episode {episode}, step {step})"
        raise DatasetError(message, field=error.field) from None


def _from_episodes(episodes: list[Any]) -> Arrays:
    """Flat arrays and episode_lengths from a JSON list of episode objects."""
    if not episodes:
        raise DatasetError("the JSON list holds no episodes", field="episode_lengths")
    keys = _episode_keys(episodes[0], 0)
    columns: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    lengths = []
    for e, episode in enumerate(episodes):
        if _episode_keys(episode, e) != keys:
            message = f"episodes[{e}] has keys {sorted(episode)}; episodes[0] has {list(keys)}"
            raise DatasetError(message, field="episodes")
        steps = [_steps(f"episodes[{e}].{key}", key, episode[key]) for key in keys]
        for key, array in zip(keys, steps, strict=True):
            if len(array) != len(steps[0]):
                message = (
                    f"episodes[{e}].{key} has {len(array)} steps; "
                    f"episodes[{e}].{keys[0]} has {len(steps[0])}"
                )
                raise DatasetError(message, field=key)
            columns[key].append(array)
        if len(steps[0]) == 0:
            raise DatasetError(f"episodes[{e}] has no steps", field="episode_lengths")
        lengths.append(len(steps[0]))
    arrays = {key: _concatenate(key, parts) for key, parts in columns.items()}
    arrays["episode_lengths"] = np.array(lengths, dtype=np.int64)
    return arrays


def _episode_keys(episode: Any, e: int) -> tuple[str, ...]:
    """The episode's keys in a fixed order, refusing anything but the per-step arrays."""
    if not isinstance(episode, dict):
        message = f'episodes[{e}] is not an object like {{"states": [...], "actions": [...]}}'
        raise DatasetError(message, field="episodes")
    for key in episode:
        if key not in STEP_ARRAYS:
            message = f"episodes[{e}] has an unexpected key {key[:40]!r}; "
            raise DatasetError(message + f"episodes hold {', '.join(STEP_ARRAYS)}", field=key)
    if "actions" not in episode or ("states" in episode) == ("observations" in episode):
        message = f'episodes[{e}] needs "actions" and one of "states" and "observations"'
        raise DatasetError(message, field="states" if "actions" in episode else "actions")
    return tuple(key for key in STEP_ARRAYS if key in episode)


def _steps(name: str, field: str, value: Any) -> np.ndarray:
    try:
        array = numeric(name, value)
    except DatasetError as error:
        raise DatasetError(error.message, field=field) from None
    if array.ndim == 0:
        raise DatasetError(f"{name} is a single number; expected a list, one per step", field=field)
    return array


def _concatenate(key: str, parts: list[np.ndarray]) -> np.ndarray:
    """One episode after another; every episode's rows must have the same shape."""
    for e, part in enumerate(parts):
        if part.shape[1:] != parts[0].shape[1:]:
            message = (
                f"episodes[{e}].{key} has rows of shape {part.shape[1:]}; "
                f"episodes[0].{key} has {parts[0].shape[1:]}"
            )
            raise DatasetError(message, field=key)
    return np.concatenate(parts)


SPEC = KindSpec(
    name="trajectories",
    description=DESCRIPTION,
    formats=("npz", "json"),
    read=read,
    canonical=canonical,
)
