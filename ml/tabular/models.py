"""The model of the tabular algorithms: a value table V[s] and Q[s, a] on a grid.

Value iteration (`ml.tabular.value_iteration`) and MaxEnt IRL (`ml.irl.maxent_irl`) both end
with values and action values on a grid world; queries read them through the attributes here
(`V`, `Q`, `grid_shape`, `layout`, `action_names`, `terminal`), never by rebuilding the MDP.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ml.core.model import TrainedModel
from ml.tabular.gridworld import TabularMDP


def mdp_shapes(mdp: TabularMDP) -> dict[str, Any]:
    return {
        "n_states": mdp.n_states,
        "n_actions": mdp.n_actions,
        "grid_shape": [mdp.shape[0], mdp.shape[1]],
    }


def mdp_description(mdp: TabularMDP) -> dict[str, Any]:
    """What a model needs to describe its grid without rebuilding the MDP."""
    return {
        "layout": list(mdp.layout),
        "action_names": list(mdp.action_names),
        "terminal": [bool(t) for t in mdp.terminal],
    }


class TabularValueModel(TrainedModel):
    """V[s] and Q[s, a] on a grid of rows x cols cells, state s = row * cols + col."""

    V: np.ndarray  # V[s]
    Q: np.ndarray  # Q[s, a]

    def __init__(self, metadata: dict[str, Any], *, V: np.ndarray, Q: np.ndarray) -> None:
        super().__init__(metadata)
        self.V = np.asarray(V, dtype=np.float64)
        self.Q = np.asarray(Q, dtype=np.float64)

    @property
    def grid_shape(self) -> tuple[int, int]:
        rows, cols = self.metadata["shapes"]["grid_shape"]
        return int(rows), int(cols)

    @property
    def layout(self) -> list[str]:
        """The map, one string per row (S start, . free, # wall, G goal, H hazard)."""
        return list(self.metadata["env"]["layout"])

    @property
    def action_names(self) -> list[str]:
        return list(self.metadata["env"]["action_names"])

    @property
    def terminal(self) -> list[bool]:
        """terminal[s]: cells that end an episode (goals, hazards); walls, which no one
        enters, count too. Value iteration gives them value 0; their greedy action means
        nothing."""
        return [bool(t) for t in self.metadata["env"]["terminal"]]

    def state(self) -> dict[str, Any]:
        return {"V": torch.from_numpy(self.V.copy()), "Q": torch.from_numpy(self.Q.copy())}

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> TabularValueModel:
        return cls(metadata, V=state["V"].double().numpy(), Q=state["Q"].double().numpy())
