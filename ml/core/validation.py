"""Checks shared by the query methods of every model kind.

They turn whatever a client sent (nested lists of numbers) into arrays of the right shape, or
raise `QueryError` with a message that says what was expected.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ml.core.errors import QueryError

MAX_BATCH = 4096


def observation_batch(observations: Any, dim: int, *, field: str = "observations") -> np.ndarray:
    """A (batch, dim) float32 array of finite numbers."""
    if not isinstance(observations, list | tuple) or len(observations) == 0:
        raise QueryError(f"'{field}' must be a non-empty list of observations", field=field)
    if len(observations) > MAX_BATCH:
        raise QueryError(f"at most {MAX_BATCH} {field} per request", field=field)
    for i, row in enumerate(observations):
        if not isinstance(row, list | tuple) or len(row) != dim:
            got = len(row) if isinstance(row, list | tuple) else type(row).__name__
            raise QueryError(
                f"{field}[{i}] must be a list of {dim} numbers, got {got}", field=f"{field}.{i}"
            )
        for x in row:
            if isinstance(x, bool) or not isinstance(x, int | float):
                raise QueryError(f"{field}[{i}] must contain only numbers", field=f"{field}.{i}")
    array = np.asarray(observations, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise QueryError(f"{field} must be finite numbers (no NaN or infinity)", field=field)
    if np.any(np.abs(array) > np.finfo(np.float32).max):
        raise QueryError(f"{field} are too large for float32", field=field)
    return array.astype(np.float32)


def grid_states(states: Any, shape: tuple[int, ...], *, field: str = "states") -> np.ndarray:
    """State indices from a list of either flat indices or coordinates in `shape` ([row, col]
    on a grid; [taxi row, taxi col, passenger, destination] in Taxi)."""
    n_states = int(np.prod(shape))
    if not isinstance(states, list | tuple) or len(states) == 0:
        raise QueryError(f"'{field}' must be a non-empty list of states", field=field)
    if len(states) > MAX_BATCH:
        raise QueryError(f"at most {MAX_BATCH} {field} per request", field=field)
    dims = len(shape)
    named = "a [row, col] pair" if dims == 2 else f"a list of {dims} coordinates"
    extent = "x".join(str(n) for n in shape)
    indices = []
    for i, s in enumerate(states):
        where = f"{field}.{i}"
        if isinstance(s, int) and not isinstance(s, bool):
            if not 0 <= s < n_states:
                raise QueryError(
                    f"{field}[{i}] = {s} is outside the world: states are 0..{n_states - 1}",
                    field=where,
                )
            indices.append(s)
        elif (
            isinstance(s, list | tuple)
            and dims > 1
            and len(s) == dims
            and all(isinstance(v, int) and not isinstance(v, bool) for v in s)
        ):
            if not all(0 <= v < n for v, n in zip(s, shape, strict=True)):
                shown = ", ".join(str(v) for v in s)
                raise QueryError(
                    f"{field}[{i}] = [{shown}] is outside the {extent} grid", field=where
                )
            indices.append(int(np.ravel_multi_index(tuple(s), shape)))
        else:
            raise QueryError(
                f"{field}[{i}] must be a state index or {named} of integers", field=where
            )
    return np.asarray(indices, dtype=np.int64)
