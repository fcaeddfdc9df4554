"""The `transitions` kind: (s, a, r, s', done) tuples for offline RL (Fitted Q Iteration).

Fitted Q Iteration (Ernst et al. 2005, "Tree-Based Batch Mode Reinforcement Learning")
regresses Q(s, a) on r + gamma max_a' Q(s', a') over a fixed set of transitions, so each row
is one step, and which episode it came from does not matter. Canonical arrays:

    observations:      float32 [N, d] (or [N, ...])  # s
    actions:           int64 [N] with n_actions: int64 [] (discrete)
                       or float32 [N, action_dim] (continuous)
    rewards:           float32 [N]                    # r
    next_observations: float32, like observations     # s'
    terminated:        bool [N]   # s' is terminal: do not bootstrap from it
    truncated:         bool [N], optional  # the episode was cut off at s': bootstrap anyway

The terminated/truncated split is Gymnasium's (>= 0.26): a time limit is not a terminal state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ml.core.errors import DatasetError
from ml.data.formats import Arrays, Format, KindSpec, read_arrays
from ml.data.validate import actions, check_names, features, flags, summarize, vector

REQUIRED = ("observations", "actions", "rewards", "next_observations", "terminated")
OPTIONAL = ("truncated", "n_actions")

DESCRIPTION = (
    "Transitions (s, a, r, s', done) for offline RL such as Fitted Q Iteration, one row per "
    "step. An .npz (or a JSON object of arrays) with `observations` [N, d] floats, `actions` "
    "[N], `rewards` [N], `next_observations` shaped like `observations`, `terminated` [N] "
    "(bool or 0/1: the next state is terminal) and optionally `truncated` [N] (the episode "
    "was cut off by a time limit). Integer actions are discrete, 0..n_actions-1, with "
    "`n_actions` inferred as the largest plus one or given as a scalar array; float actions "
    "are continuous, [N, action_dim] (a 1-D array is one dimension), unless `n_actions` is "
    "given. Stored as float32 observations and rewards, int64 discrete actions (float32 "
    "continuous ones) and bool flags."
)


def read(fmt: Format, data: bytes, max_bytes: int | None) -> Arrays:
    return read_arrays(fmt, data, max_bytes, "transitions")


def canonical(raw: Mapping[str, Any]) -> tuple[Arrays, dict[str, Any]]:
    """Validate the five (six) arrays row by row and return them with the summary."""
    check_names(raw, "transitions", REQUIRED, OPTIONAL)
    observations = features("observations", raw["observations"])  # s[N, d]
    n = len(observations)
    next_observations = features("next_observations", raw["next_observations"])  # s'[N, d]
    if next_observations.shape != observations.shape:
        message = (
            f"next_observations has shape {next_observations.shape}; "
            f"observations has {observations.shape}"
        )
        raise DatasetError(message, field="next_observations")
    action_arrays, action_facts = actions(raw, n, "observations")
    arrays = {
        "observations": observations,
        **action_arrays,
        "rewards": vector("rewards", raw["rewards"], n, "observations"),  # r[N]
        "next_observations": next_observations,
        "terminated": flags("terminated", raw["terminated"], n, "observations"),
    }
    if "truncated" in raw:
        arrays["truncated"] = flags("truncated", raw["truncated"], n, "observations")
    facts = {
        "observation_dim": math.prod(observations.shape[1:]),
        "observation_shape": [int(d) for d in observations.shape[1:]],
        **action_facts,
    }
    return arrays, summarize(arrays, n, **facts)


SPEC = KindSpec(
    name="transitions",
    description=DESCRIPTION,
    formats=("npz", "json"),
    read=read,
    canonical=canonical,
)
