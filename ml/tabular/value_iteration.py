"""Value iteration (Bellman 1957; Sutton & Barto 2018, Section 4.4) on a tabular grid world.

Starting from V = 0, sweep the Bellman optimality backup

    V_{k+1}(s) = max_a sum_s' P(s' | s, a) [r(s, a, s') + gamma V_k(s')]      (S&B Eq. 4.10)

until max_s |V_{k+1}(s) - V_k(s)| < tolerance. The backup is a gamma-contraction, so V_k
converges to V* for gamma < 1, and for gamma = 1 when every policy ends in a terminal state
with no positive reward to collect on the way. The greedy policy of the last Q is optimal.

The environment is a text grid (`ml.tabular.gridworld.GridEnv`) or Gymnasium's FrozenLake-v1 read
from its own transition table, so V* on slippery FrozenLake 4x4 is Gymnasium's: V*(start) =
0.0689 at gamma 0.9 and 0.5420 at gamma 0.99. The kernels live in `ml.tabular.dp`; this file
adds the config, progress and checkpoints (V is all a resumed run needs), and the model that answers
"values" and "q-values" queries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ml.core.algorithm import Algorithm
from ml.core.errors import QueryError, TrainingStopped
from ml.core.hooks import Hooks
from ml.core.model import TrainedModel
from ml.core.seeding import seed_everything
from ml.core.validation import grid_states
from ml.core.versions import library_versions
from ml.tabular import dp
from ml.tabular.gridworld import EnvSpec, GridEnv, TabularMDP, build_mdp

LOG_INTERVAL = 10  # sweeps between "dp/delta" metrics and progress reports


# -- config ------------------------------------------------------------------------------------
class ValueIterationConfig(BaseModel):
    """What to solve and when to stop; the defaults solve Russell & Norvig's 4x3 world."""

    model_config = ConfigDict(extra="forbid")

    env: EnvSpec = Field(
        default_factory=lambda: GridEnv(),
        description="The MDP: a text grid (kind 'grid') or FrozenLake-v1 (kind 'frozen_lake').",
    )
    discount: float = Field(
        0.99,
        ge=0.0,
        le=1.0,
        description="Discount factor gamma; 1 is allowed for grids whose step reward is not "
        "positive (every cell can reach a terminal one or pays to wait) and for FrozenLake.",
    )
    tolerance: float = Field(
        1e-8, gt=0.0, le=1.0, description="Stop when max_s |V_k+1(s) - V_k(s)| is below this."
    )
    max_iterations: int = Field(
        100_000, ge=1, le=10_000_000, description="Most sweeps before giving up on converging."
    )
    checkpoint_interval: int = Field(
        1_000, ge=1, le=10_000_000, description="Sweeps between checkpoints of V."
    )

    @model_validator(mode="after")
    def _bounded_values(self) -> ValueIterationConfig:
        if self.discount >= 1.0 and isinstance(self.env, GridEnv) and self.env.step_reward > 0.0:
            raise ValueError(
                "discount 1 with a positive step_reward has unbounded values (wandering "
                "forever pays); use discount < 1 or a step_reward <= 0"
            )
        return self


# -- training ----------------------------------------------------------------------------------
def train(
    config: ValueIterationConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
) -> ValueIterationModel:
    """Run value iteration to the tolerance; `device` is accepted and unused (NumPy on CPU)."""
    seed_everything(seed)  # nothing here is random; seeded for uniformity with the others
    mdp = build_mdp(config.env)
    V0, start = None, 0
    if resume is not None:
        V0 = resume["V"].double().numpy()
        start = int(resume["step"])
    total = config.max_iterations

    def checkpoint(iteration: int, V: np.ndarray) -> dict[str, Any]:
        return {"step": iteration, "V": torch.from_numpy(V.copy())}

    def on_sweep(iteration: int, V: np.ndarray, delta: float) -> None:
        if iteration % LOG_INTERVAL == 0 or delta < config.tolerance:
            hooks.on_metrics(iteration, {"dp/delta": delta})
            hooks.on_progress(iteration, total)
        if delta < config.tolerance:
            return  # converged: nothing left to checkpoint or stop
        if iteration % config.checkpoint_interval == 0:
            hooks.on_checkpoint(checkpoint(iteration, V))
        if hooks.should_stop():
            hooks.on_checkpoint(checkpoint(iteration, V))
            raise TrainingStopped(iteration)

    hooks.on_progress(start, total)
    result = dp.value_iteration(
        mdp.P,
        mdp.R,
        config.discount,
        terminal=mdp.terminal,
        tolerance=config.tolerance,
        max_iterations=config.max_iterations,
        V0=V0,
        start_iteration=start,
        callback=on_sweep,
    )
    hooks.on_progress(result.iterations, total)
    start_value = float(mdp.start @ result.V)
    summary = {
        "iterations": result.iterations,
        "converged": result.converged,
        "delta": result.delta,
        "start_value": start_value,
    }
    hooks.on_metrics(result.iterations, {"dp/start_value": start_value})
    metadata = {
        "kind": ValueIterationModel.kind,
        "algorithm": "value_iteration",
        "shapes": mdp_shapes(mdp),
        "env": mdp_description(mdp),
        "config": config.model_dump(mode="json"),
        "seed": seed,
        "versions": library_versions(),
        "summary": summary,
    }
    return ValueIterationModel(metadata, V=result.V, Q=result.Q)


def mdp_shapes(mdp: TabularMDP) -> dict[str, Any]:
    return {
        "n_states": mdp.n_states,
        "n_actions": mdp.n_actions,
        "grid_shape": [mdp.shape[0], mdp.shape[1]],
    }


def mdp_description(mdp: TabularMDP) -> dict[str, Any]:
    """What a model needs to answer queries about its grid without rebuilding the MDP."""
    return {
        "layout": list(mdp.layout),
        "action_names": list(mdp.action_names),
        "terminal": [bool(t) for t in mdp.terminal],
    }


# -- model -------------------------------------------------------------------------------------
class TabularValueModel(TrainedModel):
    """A value table V[s] and Q[s, a] on a grid, with the queries both DP and IRL answer."""

    queries: ClassVar[tuple[str, ...]] = ("values", "q-values")

    def __init__(self, metadata: dict[str, Any], *, V: np.ndarray, Q: np.ndarray) -> None:
        super().__init__(metadata)
        self.V = np.asarray(V, dtype=np.float64)  # V[s]
        self.Q = np.asarray(Q, dtype=np.float64)  # Q[s, a]

    @property
    def grid_shape(self) -> tuple[int, int]:
        rows, cols = self.metadata["shapes"]["grid_shape"]
        return int(rows), int(cols)

    def _grid(self, per_state: np.ndarray) -> list[list[float]]:
        return np.asarray(per_state, dtype=np.float64).reshape(self.grid_shape).tolist()

    def values(self) -> dict[str, Any]:
        """V* per state, its greedy policy, and V laid out on the grid (rows x cols)."""
        env = self.metadata["env"]
        return {
            "values": self.V.tolist(),
            "policy": dp.greedy(self.Q).tolist(),
            "action_names": list(env["action_names"]),
            "shape": list(self.grid_shape),
            "layout": list(env["layout"]),
            "grid": self._grid(self.V),
            # Cells that end an episode (goals, hazards; walls, which no one enters): value
            # iteration gives them value 0, and their policy entry means nothing.
            "terminal": list(env["terminal"]),
        }

    def q_values(
        self, *, observations: list[Any] | None = None, states: list[Any] | None = None
    ) -> dict[str, Any]:
        """Q(s, a) for the given states (flat indices or [row, col] pairs) and greedy actions."""
        if observations is not None or states is None:
            raise QueryError(
                f"a {self.kind} model is queried by grid 'states' (indices or [row, col] "
                "pairs), not by 'observations'",
                field="states" if observations is None else "observations",
            )
        index = grid_states(states, self.grid_shape)
        q = self.Q[index]  # q[i, a]
        return {"q_values": q.tolist(), "actions": dp.greedy(q).tolist()}

    def state(self) -> dict[str, Any]:
        return {"V": torch.from_numpy(self.V.copy()), "Q": torch.from_numpy(self.Q.copy())}


class ValueIterationModel(TabularValueModel):
    """The optimal values of a grid world found by value iteration."""

    kind: ClassVar[str] = "value_iteration"

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> ValueIterationModel:
        return cls(metadata, V=state["V"].double().numpy(), Q=state["Q"].double().numpy())


ALGORITHM = Algorithm(
    name="value_iteration",
    family="dp",
    description="Value iteration on a tabular grid world or FrozenLake: optimal values, "
    "Q-values and the greedy policy.",
    config=ValueIterationConfig,
    train=train,
    model=ValueIterationModel,
    queue="cpu",
)
