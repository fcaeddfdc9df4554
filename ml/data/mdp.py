"""The `mdp` kind: a finite MDP's full model, for dynamic programming and MaxEnt IRL.

Canonical arrays, in the conventions of `ml.tabular.dp`:

    P:        float64 [S, A, S]       # P[s, a, s'] = Pr(s' | s, a); each P[s, a] sums to 1
    R:        float64 [S] | [S, A] | [S, A, S]   # R[s], R[s, a] or R[s, a, s'], as uploaded
    terminal: bool [S], optional      # terminal[s]: value 0, nothing bootstraps from it
    start:    float64 [S], optional   # start[s]: the initial state distribution
    features: float32 [S, k], optional  # features[s]: what a learned reward may depend on

R keeps the form it was uploaded in (the summary's `reward` says which): whether R[s] is the
reward for being in s or for entering it is the algorithm's convention, not the file's.

P may be uploaded sparse, as triplets (s, a, next_s, p) with `n_states` and `n_actions`; it is
made dense, because the tabular solvers work on dense P, so the dense P (S * A * S float64)
must fit in the same `max_bytes` as the file. Duplicate triplets add up, as in a COO matrix.
A terminal state's P[s, a] with no transitions at all becomes a self-loop (absorbing), as
`ml.tabular.gridworld` builds them. Probabilities off [0, 1] by rounding (up to TOLERANCE) are
clipped; sums are checked within TOLERANCE but not renormalized, so storing and reading back
a dataset gives exactly the same P.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ml.core.errors import DatasetError
from ml.data.formats import Arrays, Format, KindSpec, read_arrays
from ml.data.validate import (
    RowError,
    at,
    check_names,
    check_ndim,
    check_rows,
    count,
    first,
    flags,
    floats,
    integers,
    numeric,
    reject_first,
    show,
    summarize,
)

# |sum_s' P[s, a, s'] - 1| allowed: float32 probabilities summed over thousands of states
# drift by about 1e-6.
TOLERANCE = 1e-5
TRIPLETS = ("s", "a", "next_s", "p")
SIZES = ("n_states", "n_actions")
OPTIONAL = ("terminal", "start", "features")
NOT_A_PROBABILITY = ", not a probability in [0, 1]"

DESCRIPTION = (
    "A finite MDP for dynamic programming or inverse RL. An .npz (or a JSON object of arrays) "
    "with the transition probabilities either dense, `P` [n_states, n_actions, n_states] "
    "with P[s, a, s'] = Pr(s' | s, a), or sparse as triplets: `s`, `a`, `next_s`, `p` (one "
    "entry each per transition; duplicates add up) with scalar `n_states` and `n_actions`. "
    "Every P[s, a] sums to 1 (within 1e-5); for a state marked terminal an all-zero P[s, a] "
    "becomes a self-loop. Rewards `R` as R[s] [n_states], R[s, a] [n_states, n_actions] or "
    "R[s, a, s'] [n_states, n_actions, n_states]. Optionally `terminal` [n_states] (bool or "
    "0/1), `start` [n_states], an initial distribution summing to 1, and `features` "
    "[n_states, k], state features for inverse RL's reward (`features: world`). Stored dense "
    "as float64 P, R and start, a bool terminal and float32 features; a sparse P must fit in "
    "the upload size limit once dense (8 * n_states^2 * n_actions bytes)."
)


def read(fmt: Format, data: bytes, max_bytes: int | None) -> Arrays:
    raw = read_arrays(fmt, data, max_bytes, "mdp")
    if any(name in raw for name in (*TRIPLETS, *SIZES)):
        if "P" in raw:
            message = "give P either dense or as triplets (s, a, next_s, p), not both"
            raise DatasetError(message, field="P")
        return _densify(raw, max_bytes)
    return raw


def canonical(raw: Mapping[str, Any]) -> tuple[Arrays, dict[str, Any]]:
    """Validate P, R, terminal and start and return them with the summary."""
    check_names(raw, "mdp", ("P", "R"), OPTIONAL)
    P = _probabilities(raw["P"])  # P[s, a, s']
    n_states, n_actions = P.shape[0], P.shape[1]
    terminal = flags("terminal", raw["terminal"], n_states, "P") if "terminal" in raw else None
    P = _absorbing(P, terminal)
    _check_sums(P)
    R = _rewards(raw["R"], n_states, n_actions)
    arrays = {"P": P, "R": R}
    facts: dict[str, Any] = {"n_states": n_states, "n_actions": n_actions, "reward": _form(R)}
    if terminal is not None:
        arrays["terminal"] = terminal
        facts["terminal_states"] = int(terminal.sum())
    if "start" in raw:
        arrays["start"] = _start(raw["start"], n_states)
    if "features" in raw:
        arrays["features"] = _features(raw["features"], n_states)
        facts["n_features"] = int(arrays["features"].shape[1])
    return arrays, summarize(arrays, n_states * n_actions, **facts)


def _densify(raw: Mapping[str, Any], max_bytes: int | None) -> Arrays:
    """Dense P[s, a, s'] from triplets (s, a, next_s, p), within the size limit."""
    check_names(raw, "mdp", (*TRIPLETS, *SIZES, "R"), OPTIONAL)
    n_states, n_actions = count("n_states", raw["n_states"]), count("n_actions", raw["n_actions"])
    size = 8 * n_states * n_actions * n_states
    if max_bytes is not None and size > max_bytes:
        message = (
            f"a dense P for {n_states} states and {n_actions} actions is {size} bytes; "
            f"the limit is {max_bytes}"
        )
        raise DatasetError(message, field="n_states")
    m = _triplet_count(raw["s"])
    limits = {"s": (n_states, "n_states"), "a": (n_actions, "n_actions")}
    limits["next_s"] = limits["s"]
    index = {}
    for name, (limit, limit_name) in limits.items():
        column = _triplet_column(name, raw[name], m)
        index[name] = integers(name, column, limit=limit, limit_name=limit_name)
    p = floats("p", _triplet_column("p", raw["p"], m), np.float64)  # p[m]
    reject_first("p", (p < -TOLERANCE) | (p > 1 + TOLERANCE), p, NOT_A_PROBABILITY)
    flat = (index["s"] * n_actions + index["a"]) * n_states + index["next_s"]  # flat[m]
    P = np.bincount(flat, weights=np.clip(p, 0.0, 1.0), minlength=n_states * n_actions * n_states)
    rest = {name: raw[name] for name in ("R", *OPTIONAL) if name in raw}
    return {"P": P.reshape(n_states, n_actions, n_states), **rest}


def _triplet_count(value: Any) -> int:
    s = numeric("s", value)
    check_ndim("s", s, (1,), "[m], one entry per transition")
    if len(s) == 0:
        raise DatasetError("s is empty: the MDP lists no transitions", field="s")
    return len(s)


def _triplet_column(name: str, value: Any, m: int) -> np.ndarray:
    array = numeric(name, value)
    check_rows(name, array, m, "s")
    check_ndim(name, array, (1,), f"[{m}], one entry per transition")
    return array


def _probabilities(value: Any) -> np.ndarray:
    """P[s, a, s'] as float64 in [0, 1] (rounding errors clipped)."""
    P = numeric("P", value)
    check_ndim("P", P, (3,), "P[s, a, s'] of shape [n_states, n_actions, n_states]")
    n_states, n_actions, n_next = P.shape
    if n_states == 0 or n_actions == 0 or n_next != n_states:
        message = (
            f"P has shape {P.shape}; expected [n_states, n_actions, n_states] "
            "with at least one state and one action"
        )
        raise DatasetError(message, field="P")
    P = floats("P", P, np.float64)
    reject_first("P", (P < -TOLERANCE) | (P > 1 + TOLERANCE), P, NOT_A_PROBABILITY)
    return np.clip(P, 0.0, 1.0)


def _absorbing(P: np.ndarray, terminal: np.ndarray | None) -> np.ndarray:
    """Self-loops for terminal states' (s, a) that list no transitions."""
    if terminal is None:
        return P
    empty = (P.sum(axis=2) == 0) & terminal[:, None]  # empty[s, a]
    if not empty.any():
        return P
    P = P.copy()
    s, a = np.nonzero(empty)
    P[s, a, s] = 1.0
    return P


def _check_sums(P: np.ndarray) -> None:
    sums = P.sum(axis=2)  # sums[s, a] = sum_s' P[s, a, s']
    index = first(np.abs(sums - 1.0) > TOLERANCE)
    if index is not None:
        message = f"{at('P', index)} sums to {show(sums[index])}, not 1"
        if sums[index] == 0:
            message += " (no transitions; mark the state terminal to make it absorbing)"
        raise RowError(message, field="P", index=index)


def _rewards(value: Any, n_states: int, n_actions: int) -> np.ndarray:
    R = numeric("R", value)
    shapes = [(n_states,), (n_states, n_actions), (n_states, n_actions, n_states)]
    if R.shape not in shapes:
        message = (
            f"R has shape {R.shape}; expected R[s] {shapes[0]}, R[s, a] {shapes[1]} "
            f"or R[s, a, s'] {shapes[2]}"
        )
        raise DatasetError(message, field="R")
    return floats("R", R, np.float64)


def _form(R: np.ndarray) -> str:
    return ("R[s]", "R[s, a]", "R[s, a, s']")[R.ndim - 1]


def _start(value: Any, n_states: int) -> np.ndarray:
    """start[s] >= 0 summing to 1 (rounding errors clipped, not renormalized)."""
    start = numeric("start", value)
    if start.shape != (n_states,):
        message = f"start has shape {start.shape}; expected [{n_states}], one per state"
        raise DatasetError(message, field="start")
    start = floats("start", start, np.float64)
    reject_first("start", (start < -TOLERANCE) | (start > 1 + TOLERANCE), start, NOT_A_PROBABILITY)
    total = float(start.sum())
    if abs(total - 1.0) > TOLERANCE:
        raise DatasetError(f"start sums to {show(total)}, not 1", field="start")
    return np.clip(start, 0.0, 1.0)


def _features(value: Any, n_states: int) -> np.ndarray:
    """features[s, k]: finite float32, one row per state."""
    array = numeric("features", value)
    check_ndim("features", array, (2,), f"[{n_states}, k], one row of features per state")
    check_rows("features", array, n_states, "the states of P")
    if array.shape[1] == 0:
        raise DatasetError("features has no columns: a row needs at least one", field="features")
    return floats("features", array, np.float32)


SPEC = KindSpec(
    name="mdp",
    description=DESCRIPTION,
    formats=("npz", "json"),
    read=read,
    canonical=canonical,
)
