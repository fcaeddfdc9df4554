"""Checks shared by every dataset kind: dtypes, shapes, finite numbers, indices in range.

Each check takes an array's name as the user wrote it in the file and raises
`DatasetError(message, field=name)` whose message points at the first offending element the
way the user would index it (`rewards[17] is NaN`, `x[3, 2] is inf`), so a file of a million
rows can be fixed without a debugger. Checks are vectorized (one scan per rule, no Python loop
over rows) and return the array in its canonical dtype, so a kind's validator reads as a list
of rules.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from ml.core.errors import DatasetError

# Labels, states, actions and their counts stay below this: far beyond any table or one-hot
# layer a job could build, and it keeps every index an int32 on the way to torch.
MAX_INDEX = 2**31 - 1
FLOAT32_MAX = float(np.finfo(np.float32).max)
# Dtype kinds an upload may hold: bool, signed and unsigned integers, floats. Never objects
# (pickles), strings, complex numbers, dates or structured records.
NUMERIC_KINDS = "biuf"


class RowError(DatasetError):
    """A DatasetError about one element; `index` lets a caller add context (the episode)."""

    def __init__(self, message: str, *, field: str, index: tuple[int, ...]) -> None:
        super().__init__(message, field=field)
        self.index = index


def at(name: str, index: tuple[int, ...]) -> str:
    """`'P[3, 1]'`: an element's address as the user would write it (a scalar is its name)."""
    return f"{name}[{', '.join(str(i) for i in index)}]" if index else name


def show(value: Any) -> str:
    """A number as a message shows it: `NaN`, `inf`, `1.5`, `3`, `1e+39`."""
    number = value.item() if isinstance(value, np.generic) else value
    if isinstance(number, float):
        if math.isnan(number):
            return "NaN"
        return f"{number:g}"
    return str(number)


def first(mask: np.ndarray) -> tuple[int, ...] | None:
    """Index of the first True of `mask` in row-major order, or None if there is none."""
    if not mask.any():
        return None
    if mask.ndim == 0:
        return ()
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def reject_first(name: str, mask: np.ndarray, values: np.ndarray, problem: str) -> None:
    """Raise for the first True of `mask`: `'<name>[i, j] is <value><problem>'`."""
    index = first(mask)
    if index is not None:
        message = f"{at(name, index)} is {show(values[index])}{problem}"
        raise RowError(message, field=name, index=index)


def check_names(
    arrays: Mapping[str, Any], kind: str, required: Collection[str], optional: Collection[str]
) -> None:
    """Every required array is present and nothing unexpected is (a typo would be ignored)."""
    expected = ", ".join([*required, *(f"optional {name}" for name in optional)])
    for name in required:
        if name not in arrays:
            raise DatasetError(f"{kind} datasets need {name} (arrays: {expected})", field=name)
    for name in arrays:
        if name not in required and name not in optional:
            message = f"unexpected array {name[:64]!r}; {kind} datasets hold {expected}"
            raise DatasetError(message, field=name[:64] or "file")


def numeric(name: str, value: Any) -> np.ndarray:
    """`value` as an array of numbers, refusing objects, strings and ragged lists."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        message = f"{name} is not a rectangular array of numbers (ragged rows?)"
        raise DatasetError(message, field=name) from exc
    if array.dtype.kind not in NUMERIC_KINDS:
        message = f"{name} holds {array.dtype} values; expected numbers (bool, int or float)"
        raise DatasetError(message, field=name)
    return array


def check_ndim(name: str, array: np.ndarray, ndims: Collection[int], expected: str) -> None:
    if array.ndim not in ndims:
        raise DatasetError(f"{name} has shape {array.shape}; expected {expected}", field=name)


def check_rows(name: str, array: np.ndarray, n: int, reference: str) -> None:
    """`array` has one row per row of `reference` (which has `n`)."""
    if array.ndim == 0:
        raise DatasetError(f"{name} is a single number; expected one per row", field=name)
    if array.shape[0] != n:
        message = f"{name} has {array.shape[0]} rows; {reference} has {n}"
        raise DatasetError(message, field=name)


def floats(name: str, value: Any, dtype: type[np.floating[Any]]) -> np.ndarray:
    """Finite numbers as `dtype` (float32 or float64), refusing values the cast would lose."""
    array = numeric(name, value)
    if array.dtype.kind == "f":
        reject_first(name, ~np.isfinite(array), array, "")
        if dtype is np.float32 and array.dtype.itemsize > 4:
            reject_first(name, np.abs(array) > FLOAT32_MAX, array, ", too large for float32")
    return array.astype(dtype)


def features(name: str, value: Any, *, max_ndim: int = 4) -> np.ndarray:
    """Float32 rows of features, x[N, ...]: a 1-D array is N rows of one feature."""
    array = numeric(name, value)
    check_ndim(name, array, range(1, max_ndim + 1), f"[N, d] (or up to {max_ndim} dimensions)")
    if array.ndim == 1:
        array = array[:, None]
    if array.shape[0] == 0:
        raise DatasetError(f"{name} has no rows", field=name)
    if array.size == 0:
        raise DatasetError(f"{name} has shape {array.shape}: rows without values", field=name)
    return floats(name, array, np.float32)


def vector(name: str, value: Any, n: int, reference: str) -> np.ndarray:
    """One finite float32 per row of `reference`, e.g. rewards[N]."""
    array = numeric(name, value)
    check_rows(name, array, n, reference)
    check_ndim(name, array, (1,), f"[{n}], one number per row")
    return floats(name, array, np.float32)


def integers(
    name: str, value: Any, *, limit: int | None = None, limit_name: str = ""
) -> np.ndarray:
    """Non-negative integers as int64, each `< limit` when one is given (else < 2**31 - 1).

    Floats are accepted when every value is integral (labels often come out of pandas as
    floats); booleans count as 0 and 1.
    """
    array = numeric(name, value)
    if array.dtype.kind == "f":
        array = array.astype(np.float64)  # float16 cannot even hold the comparisons below
        reject_first(name, ~np.isfinite(array), array, ", not an integer")
        reject_first(name, array != np.floor(array), array, ", not an integer")
    if array.dtype.kind != "u":  # comparing unsigned values with 0 is always False anyway
        reject_first(name, array < 0, array, ", not a non-negative integer")
    if limit is not None:
        reject_first(name, array >= limit, array, f", not < {limit_name} = {limit}")
    reject_first(name, array > MAX_INDEX, array, f", beyond the largest index {MAX_INDEX}")
    return array.astype(np.int64)


def flags(name: str, value: Any, n: int, reference: str) -> np.ndarray:
    """One bool per row; integers or floats must be 0 or 1."""
    array = numeric(name, value)
    check_rows(name, array, n, reference)
    check_ndim(name, array, (1,), f"[{n}], one flag per row")
    if array.dtype.kind != "b":
        reject_first(name, (array != 0) & (array != 1), array, ", not 0 or 1 (or a bool)")
    return array.astype(bool)


def count(name: str, value: Any, *, low: int = 1) -> int:
    """A single integer in [low, 2**31 - 1], e.g. n_actions (0-d, or an array of one)."""
    array = numeric(name, value)
    if array.size != 1 or array.ndim > 1:
        message = f"{name} has shape {array.shape}; expected a single integer"
        raise DatasetError(message, field=name)
    number = array.reshape(()).item()
    if isinstance(number, float) and not (math.isfinite(number) and number.is_integer()):
        raise DatasetError(f"{name} is {show(number)}, not an integer", field=name)
    if not low <= number <= MAX_INDEX:
        message = f"{name} is {show(number)}; it must be between {low} and {MAX_INDEX}"
        raise DatasetError(message, field=name)
    return int(number)


def index_column(
    arrays: Mapping[str, Any], name: str, count_name: str, n: int, reference: str
) -> tuple[np.ndarray, int]:
    """Integer indices[N] (states, discrete actions) and how many there are.

    The count is `arrays[count_name]` when the file gives it (an environment with states the
    data never visits), otherwise one more than the largest index seen.
    """
    array = numeric(name, arrays[name])
    check_rows(name, array, n, reference)
    if array.ndim == 2 and array.shape[1] == 1:  # [N, 1] as gymnasium's wrappers write it
        array = array[:, 0]
    check_ndim(name, array, (1,), f"[{n}], one integer per row")
    given = arrays.get(count_name)
    limit = None if given is None else count(count_name, given)
    indices = integers(name, array, limit=limit, limit_name=count_name)
    return indices, int(indices.max()) + 1 if limit is None else limit


def actions(
    arrays: Mapping[str, Any], n: int, reference: str
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Actions of transitions or trajectories: discrete or continuous, told apart by dtype.

    Integer (or bool) actions, or float actions with `n_actions` given, are discrete:
    actions[N] int64 with n_actions stored as a 0-d array. Other float actions are continuous:
    actions[N, action_dim] float32 (a 1-D array is one action dimension).
    """
    array = numeric("actions", arrays["actions"])
    if array.dtype.kind == "f" and "n_actions" not in arrays:
        check_rows("actions", array, n, reference)
        continuous = features("actions", array, max_ndim=2)  # actions[N, action_dim]
        return {"actions": continuous}, {"discrete": False, "action_dim": continuous.shape[1]}
    discrete, n_actions = index_column(arrays, "actions", "n_actions", n, reference)
    canonical = {"actions": discrete, "n_actions": np.array(n_actions, dtype=np.int64)}
    return canonical, {"discrete": True, "n_actions": n_actions}


def summarize(arrays: Mapping[str, np.ndarray], rows: int, **facts: Any) -> dict[str, Any]:
    """The JSON-friendly summary every kind shares, plus its own facts."""
    shapes = {
        name: {"shape": [int(d) for d in array.shape], "dtype": str(array.dtype)}
        for name, array in arrays.items()
    }
    return {"rows": int(rows), "arrays": shapes, **facts}
