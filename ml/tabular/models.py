"""The model of the tabular algorithms: value tables V[s] and Q[s, a] over a finite world.

Value iteration, policy iteration, policy evaluation (`ml.tabular`) and MaxEnt IRL
(`ml.irl.maxent_irl`) all end with values and action values over the states of a world;
queries read them through the attributes here (`V`, `Q`, `policy`, `grid_shape`, `layout`,
`action_names`, `terminal`, `wall`), never by rebuilding the MDP. Per-state masks are kept as
tensors in the model file, not in its metadata, which stays small for 10^6 states.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ml.core.model import TrainedModel
from ml.tabular.mdp import TabularMDP


def mdp_shapes(mdp: TabularMDP) -> dict[str, Any]:
    return {
        "n_states": mdp.n_states,
        "n_actions": mdp.n_actions,
        "grid_shape": list(mdp.shape),
    }


def mdp_description(mdp: TabularMDP) -> dict[str, Any]:
    """What a model needs to describe its world without rebuilding the MDP."""
    return {
        "layout": None if mdp.layout is None else list(mdp.layout),
        "action_names": list(mdp.action_names),
    }


class TabularValueModel(TrainedModel):
    """V[s], Q[s, a] and the policy over states laid out in `grid_shape` (row-major)."""

    V: np.ndarray  # V[s]
    Q: np.ndarray  # Q[s, a]
    policy: np.ndarray  # policy[s]: the action the model takes in s

    def __init__(
        self,
        metadata: dict[str, Any],
        *,
        V: np.ndarray,
        Q: np.ndarray,
        terminal: np.ndarray | None = None,
        wall: np.ndarray | None = None,
        policy: np.ndarray | None = None,
    ) -> None:
        super().__init__(metadata)
        self.V = np.asarray(V, dtype=np.float64)
        self.Q = np.asarray(Q, dtype=np.float64)
        n = len(self.V)
        old = metadata.get("env", {}).get("terminal")  # models saved before the masks moved
        if terminal is None:
            terminal = np.asarray(old, dtype=bool) if old is not None else np.zeros(n, bool)
        self.terminal_mask = np.asarray(terminal, dtype=bool)
        self.wall_mask = np.zeros(n, bool) if wall is None else np.asarray(wall, dtype=bool)
        # The policy the model acts by: greedy in Q unless the algorithm says otherwise
        # (policy evaluation keeps the evaluated policy; policy iteration keeps its own
        # choice among tied actions).
        self.policy = self.Q.argmax(axis=1) if policy is None else np.asarray(policy, np.int64)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.metadata["shapes"]["grid_shape"])

    @property
    def layout(self) -> list[str] | None:
        """The map, one string per row (S start, . free, # wall, G goal, H hazard), for
        worlds that have one."""
        layout = self.metadata["env"].get("layout")
        return None if layout is None else list(layout)

    @property
    def action_names(self) -> list[str]:
        return list(self.metadata["env"]["action_names"])

    @property
    def terminal(self) -> list[bool]:
        """terminal[s]: states that end an episode (goals, hazards). Their value is 0 and
        their greedy action means nothing; walls are not terminal (see `wall`)."""
        return self.terminal_mask.tolist()

    @property
    def wall(self) -> list[bool]:
        """wall[s]: cells no agent can be in; their value and action mean nothing."""
        return self.wall_mask.tolist()

    def state(self) -> dict[str, Any]:
        return {
            "V": torch.from_numpy(self.V.copy()),
            "Q": torch.from_numpy(self.Q.copy()),
            "terminal": torch.from_numpy(self.terminal_mask.copy()),
            "wall": torch.from_numpy(self.wall_mask.copy()),
            "policy": torch.from_numpy(self.policy.astype(np.int64)),
        }

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> TabularValueModel:
        return cls(metadata, **table_arrays(state))


def table_arrays(state: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments of `TabularValueModel` from its `state()`."""
    optional: dict[str, Any] = {
        name: state[name].numpy() for name in ("terminal", "wall", "policy") if name in state
    }
    return {"V": state["V"].double().numpy(), "Q": state["Q"].double().numpy(), **optional}
