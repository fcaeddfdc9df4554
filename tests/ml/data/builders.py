"""Factories for dataset files: valid arrays per kind, and the bytes of .npz, JSON and CSV."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

from ml.core.errors import DatasetError
from ml.data import Dataset, from_npz, parse_upload, to_npz

LIMIT = 1 << 20  # max_bytes for tests: 1 MiB

Arrays = dict[str, Any]


def put(**changes: Any) -> Callable[[Arrays], Arrays]:
    """A change to a valid dict of arrays: replace some, drop those set to None."""

    def change(arrays: Arrays) -> Arrays:
        arrays = {**arrays, **changes}
        return {k: v for k, v in arrays.items() if v is not None}

    return change


def poke(name: str, index: tuple[int, ...], value: Any) -> Callable[[Arrays], Arrays]:
    """A change that sets one element, widening the dtype only as far as the value needs."""

    def change(arrays: Arrays) -> Arrays:
        array = np.asarray(arrays[name])
        array = array.astype(np.result_type(array, np.min_scalar_type(value)))
        array[index] = value
        return {**arrays, name: array}

    return change


def npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def npz_compressed(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def as_json(document: Any) -> bytes:
    """JSON of arrays or nested structures holding arrays."""

    def plain(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return json.dumps(plain(document)).encode()


def zip_of(members: Mapping[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip with arbitrary members: what np.savez would never write."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def samples_arrays(n: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"x": rng.normal(size=(n, 3)), "y": np.arange(n) % 4}


def transitions_arrays(n: int = 20, *, discrete: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    observations = rng.normal(size=(n + 1, 2)).astype(np.float32)
    actions = rng.integers(0, 3, size=n) if discrete else rng.uniform(-1, 1, size=(n, 2))
    terminated = np.zeros(n, dtype=bool)
    terminated[[9, n - 1]] = True
    return {
        "observations": observations[:-1],
        "actions": actions,
        "rewards": rng.normal(size=n),
        "next_observations": observations[1:],
        "terminated": terminated,
    }


def trajectories_arrays() -> dict[str, np.ndarray]:
    """Three episodes of 4, 3 and 5 steps on a 6-state chain with 2 actions."""
    rng = np.random.default_rng(2)
    return {
        "states": rng.integers(0, 6, size=12),
        "actions": rng.integers(0, 2, size=12),
        "episode_lengths": np.array([4, 3, 5]),
        "rewards": rng.normal(size=12),
    }


def mdp_arrays(n_states: int = 4, n_actions: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    P = rng.uniform(size=(n_states, n_actions, n_states))
    P /= P.sum(axis=2, keepdims=True)  # P[s, a, s']
    return {"P": P, "R": rng.normal(size=(n_states, n_actions))}


def sparse_mdp() -> dict[str, Any]:
    """A 3-state chain: action 1 moves right (state 2 is terminal), action 0 stays."""
    return {
        "s": np.array([0, 0, 1, 1]),
        "a": np.array([0, 1, 0, 1]),
        "next_s": np.array([0, 1, 1, 2]),
        "p": np.array([1.0, 1.0, 1.0, 1.0]),
        "n_states": np.array(3),
        "n_actions": np.array(2),
        "R": np.array([0.0, 0.0, 1.0]),
        "terminal": np.array([0, 0, 1]),
    }


def assert_round_trip(kind: str, data: bytes) -> Dataset:
    """parse -> to_npz -> from_npz gives the same arrays (and dtypes) and summary."""
    parsed = parse_upload(kind, data, max_bytes=LIMIT)
    stored = to_npz(parsed)
    again = from_npz(kind, stored)
    assert again.kind == parsed.kind == kind
    assert list(again.arrays) == list(parsed.arrays)
    for name, array in parsed.arrays.items():
        assert again.arrays[name].dtype == array.dtype, name
        np.testing.assert_array_equal(again.arrays[name], array, err_msg=name)
    assert again.summary == parsed.summary
    json.dumps(parsed.summary)  # JSON-friendly
    with np.load(io.BytesIO(stored), allow_pickle=False) as plain:
        assert sorted(plain.files) == sorted(parsed.arrays)
    return parsed


def rejects(kind: str, data: bytes, field: str, *fragments: str, limit: int = LIMIT) -> str:
    """The upload is refused with a DatasetError on `field` whose message has `fragments`."""
    with pytest.raises(DatasetError) as info:
        parse_upload(kind, data, max_bytes=limit)
    error = info.value
    assert error.field == field, (error.field, error.message)
    for fragment in fragments:
        assert fragment in error.message, (fragment, error.message)
    return error.message
