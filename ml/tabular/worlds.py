"""The worlds the tabular algorithms solve, chosen in a config's `env` by `kind`.

- `grid` (`ml.tabular.gridworld`): a text grid, the default;
- `frozen_lake`, `taxi`, `cliff_walking` (`ml.tabular.toy_text`): Gymnasium's toy-text
  environments with their exact dynamics;
- `objectworld`, `binaryworld` (`ml.tabular.objectworld`): the benchmark worlds of inverse RL
  (Levine et al. 2011; Wulfmeier et al. 2015), with their own state features;
- `mdp`: an uploaded `mdp` dataset (`ml.data.mdp`): P, R and optionally terminal, start and
  state features.

Every one becomes a `ml.tabular.mdp.TabularMDP`. An uploaded R[s] is the reward received in
state s whatever the action (Puterman's and pymdptoolbox's convention), R[s, a] the expected
reward of the action, and R[s, a, s'] is averaged over s' with P.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from ml.core.errors import ConfigError
from ml.data import Dataset, UploadedDataset, resolve
from ml.tabular.gridworld import ACTION_NAMES, GridEnv, build_grid
from ml.tabular.mdp import TabularMDP, from_triplets
from ml.tabular.objectworld import (
    ACTION_NAMES_5,
    BinaryWorldEnv,
    ObjectWorldEnv,
    build_binaryworld,
    build_objectworld,
)
from ml.tabular.toy_text import CliffWalkingEnv, FrozenLakeEnv, TaxiEnv, build_toy_text
from ml.tabular.toy_text import n_states as toy_text_states


class MDPEnv(BaseModel):
    """An uploaded `mdp` dataset."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["mdp"] = "mdp"
    dataset: UploadedDataset = Field(description="The uploaded mdp dataset.")


def _kind(value: Any) -> str | None:
    """The world's kind; a grid when a config leaves it out (`{"layout": [...]}`)."""
    if isinstance(value, dict):
        return str(value.get("kind", "grid"))
    return getattr(value, "kind", None)


EnvSpec = Annotated[
    Annotated[GridEnv, Tag("grid")]
    | Annotated[FrozenLakeEnv, Tag("frozen_lake")]
    | Annotated[TaxiEnv, Tag("taxi")]
    | Annotated[CliffWalkingEnv, Tag("cliff_walking")]
    | Annotated[ObjectWorldEnv, Tag("objectworld")]
    | Annotated[BinaryWorldEnv, Tag("binaryworld")]
    | Annotated[MDPEnv, Tag("mdp")],
    Discriminator(_kind),
]
WORLD_KINDS = (
    "grid",
    "frozen_lake",
    "taxi",
    "cliff_walking",
    "objectworld",
    "binaryworld",
    "mdp",
)


def build_mdp(env: Any, datasets: Mapping[str, Any] | None = None) -> TabularMDP:
    """The tabular MDP of an `env` config."""
    if isinstance(env, GridEnv):
        return build_grid(env)
    if isinstance(env, MDPEnv):
        return from_dataset(resolve(env.dataset, datasets, "mdp").arrays)
    if isinstance(env, ObjectWorldEnv):
        return build_objectworld(env)
    if isinstance(env, BinaryWorldEnv):
        return build_binaryworld(env)
    return build_toy_text(env)


def size_of(env: Any, datasets: Mapping[str, Any] | None = None) -> tuple[int, int, int]:
    """(states, actions, non-zeros of P) of a world without building it (for the cost
    estimate). An uploaded MDP's come from its dataset or the dataset's summary (the service
    estimates from that), P counted dense; one not at hand counts as one state."""
    if isinstance(env, GridEnv):
        rows, cols = env.shape
        return rows * cols, len(ACTION_NAMES), rows * cols * len(ACTION_NAMES) * 3
    if isinstance(env, MDPEnv):
        found = (datasets or {}).get(env.dataset.id)
        summary = found.summary if isinstance(found, Dataset) else dict(found or {})
        states, actions = int(summary.get("n_states", 1)), int(summary.get("n_actions", 1))
        return states, actions, states * actions * states
    if isinstance(env, ObjectWorldEnv | BinaryWorldEnv):
        states, actions = env.size * env.size, len(ACTION_NAMES_5)
        return states, actions, states * actions * actions
    states = toy_text_states(env)
    actions = 6 if isinstance(env, TaxiEnv) else 4
    return states, actions, states * actions * 3


def from_dataset(arrays: Mapping[str, np.ndarray]) -> TabularMDP:
    """A TabularMDP from an `mdp` dataset's canonical arrays (`ml.data.mdp`)."""
    P = np.asarray(arrays["P"], dtype=np.float64)  # P[s, a, s']
    n_states, n_actions = P.shape[0], P.shape[1]
    flat = P.reshape(n_states * n_actions, n_states)
    rows, targets = np.nonzero(flat)
    transitions = from_triplets(rows, targets, flat[rows, targets], n_states, n_actions)
    R = np.asarray(arrays["R"], dtype=np.float64)
    if R.ndim == 1:
        R = np.repeat(R[:, None], n_actions, axis=1)  # R[s, a] = R(s)
    elif R.ndim == 3:
        R = np.einsum("sat,sat->sa", P, R)  # R[s, a] = sum_s' P(s'|s, a) R(s, a, s')
    if "terminal" in arrays:
        terminal = np.asarray(arrays["terminal"], dtype=bool)
    else:
        terminal = np.zeros(n_states, dtype=bool)
    if "start" in arrays:
        start = np.asarray(arrays["start"], dtype=np.float64)
    else:
        start = np.full(n_states, 1.0 / n_states)
    if terminal.all():
        raise ConfigError(
            "every state of the MDP is terminal: there is nothing to solve", field="env.dataset"
        )
    return TabularMDP(
        transitions=transitions,
        R=R,
        terminal=terminal,
        start=start,
        shape=(n_states,),
        action_names=tuple(f"a{a}" for a in range(n_actions)),
        wall=np.zeros(n_states, dtype=bool),
        state_reward=R.mean(axis=1),  # R[s] as uploaded, or the actions' mean
        features=np.asarray(arrays["features"], np.float64) if "features" in arrays else None,
    )
