"""Queries of decision-making models: Q-values, greedy actions, state values, rewards.

Deep models are asked about observations (vectors), tabular ones about states (flat indices
or [row, col] pairs); `q-values` and `actions` accept either and check it fits the model.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import numpy as np
from pydantic import BaseModel, Field, model_validator

from ml.core.errors import QueryError
from ml.core.validation import MAX_BATCH, grid_states, observation_batch
from ml.queries.base import NPY, REQUEST, Query, Vector, exposes, npy

State = int | list[int]


class QFunction(Protocol):
    observation_dim: int

    def q_function(self, observations: np.ndarray) -> np.ndarray: ...


class Tabular(Protocol):
    V: np.ndarray  # V[s]
    Q: np.ndarray  # Q[s, a]
    grid_shape: tuple[int, int]
    layout: list[str]
    action_names: list[str]
    terminal: list[bool]


class RewardTable(Protocol):
    reward: np.ndarray  # r[s]
    grid_shape: tuple[int, int]
    layout: list[str]


class DecisionRequest(BaseModel):
    model_config = REQUEST

    observations: list[Vector] | None = Field(
        None, max_length=MAX_BATCH, description="For models of environments with vectors."
    )
    states: list[State] | None = Field(
        None, max_length=MAX_BATCH, description="For tabular models: indices or [row, col]."
    )

    @model_validator(mode="after")
    def _one_input(self) -> DecisionRequest:
        if (self.observations is None) == (self.states is None):
            raise ValueError("send exactly one of 'observations' or 'states'")
        return self


def q_table(model: Any, request: DecisionRequest) -> np.ndarray:
    """q[i, a] for the requested inputs, from a Q-network or a Q-table."""
    if exposes(type(model), "q_function"):
        if request.observations is None:
            raise QueryError(
                f"a {model.kind} model is queried by 'observations', not by 'states'",
                field="states",
            )
        net = cast(QFunction, model)
        x = observation_batch(request.observations, net.observation_dim)  # x[B, obs_dim]
        q = np.asarray(net.q_function(x), dtype=np.float64)
        if not np.all(np.isfinite(q)):
            raise QueryError(
                "the Q-values of these observations overflow; they are far outside what the "
                "model was trained on",
                field="observations",
            )
        return q
    if request.states is None:
        raise QueryError(
            f"a {model.kind} model is queried by grid 'states' (indices or [row, col] pairs), "
            "not by 'observations'",
            field="observations",
        )
    table = cast(Tabular, model)
    return table.Q[grid_states(request.states, table.grid_shape)]


class QValuesResponse(BaseModel):
    q_values: list[list[float]] = Field(description="One row per input, one value per action.")
    actions: list[int] = Field(description="The greedy action of each input.")


def q_values(model: Any, request: DecisionRequest) -> QValuesResponse:
    q = q_table(model, request)  # q[i, a]
    return QValuesResponse(q_values=q.tolist(), actions=q.argmax(axis=1).tolist())


Q_OR_TABLE = (("q_function", "observation_dim"), ("Q", "grid_shape"))

Q_VALUES = Query(
    name="q-values",
    summary="Q-values of observations or states",
    description="Q(s, a) for every action of each input, and the greedy action. As .npy: "
    "the (inputs, actions) float64 array.",
    request=DecisionRequest,
    response=QValuesResponse,
    needs=Q_OR_TABLE,
    run=q_values,
    renderers={NPY: lambda r: npy(np.asarray(r.q_values, dtype=np.float64))},
    examples=({"observations": [[0.0, 0.0, 0.0, 0.0]]}, {"states": [0, [1, 2]]}),
)


class ActionsResponse(BaseModel):
    actions: list[int] = Field(description="The greedy action of each input.")


ACTIONS = Query(
    name="actions",
    summary="Greedy actions for observations or states",
    description="The action the trained policy takes in each input (argmax of Q).",
    request=DecisionRequest,
    response=ActionsResponse,
    needs=Q_OR_TABLE,
    run=lambda model, request: ActionsResponse(
        actions=q_table(model, request).argmax(axis=1).tolist()
    ),
    examples=({"observations": [[0.0, 0.0, 0.0, 0.0]]},),
)


class ValuesRequest(BaseModel):
    model_config = REQUEST


class ValuesResponse(BaseModel):
    values: list[float] = Field(description="V(s) per state, in state order.")
    policy: list[int] = Field(description="The greedy action per state.")
    action_names: list[str]
    shape: list[int] = Field(description="[rows, cols] of the grid.")
    layout: list[str] = Field(description="The map, one string per row.")
    grid: list[list[float]] = Field(description="V laid out on the grid.")
    terminal: list[bool] = Field(
        description="States that end an episode (their value is 0, their policy means nothing)."
    )


def values(model: Tabular, _: ValuesRequest) -> ValuesResponse:
    rows, cols = model.grid_shape
    return ValuesResponse(
        values=model.V.tolist(),
        policy=model.Q.argmax(axis=1).tolist(),
        action_names=list(model.action_names),
        shape=[rows, cols],
        layout=list(model.layout),
        grid=model.V.reshape(rows, cols).tolist(),
        terminal=list(model.terminal),
    )


VALUES = Query(
    name="values",
    summary="State values and greedy policy of a tabular model",
    description="V(s) of every state, the greedy policy, and V laid out on the grid. As "
    ".npy: V as a (rows, cols) float64 array.",
    request=ValuesRequest,
    response=ValuesResponse,
    needs=("V", "Q", "grid_shape", "layout", "action_names", "terminal"),
    run=values,
    renderers={NPY: lambda r: npy(np.asarray(r.grid, dtype=np.float64))},
)


class RewardsRequest(BaseModel):
    model_config = REQUEST

    states: list[State] | None = Field(
        None,
        max_length=MAX_BATCH,
        description="Indices or [row, col] pairs; omit for the whole table on the grid.",
    )


class RewardsResponse(BaseModel):
    rewards: list[float] = Field(description="r(s) of the requested states, or of all.")
    grid: list[list[float]] | None = Field(None, description="The table laid out on the grid.")
    shape: list[int] | None = None
    layout: list[str] | None = None


def rewards(model: RewardTable, request: RewardsRequest) -> RewardsResponse:
    if request.states is not None:
        index = grid_states(request.states, model.grid_shape)
        return RewardsResponse(rewards=model.reward[index].tolist())
    rows, cols = model.grid_shape
    return RewardsResponse(
        rewards=model.reward.tolist(),
        grid=model.reward.reshape(rows, cols).tolist(),
        shape=[rows, cols],
        layout=list(model.layout),
    )


REWARDS = Query(
    name="rewards",
    summary="Learned rewards of states",
    description="The learned reward r(s) of the given states, or (GET, or no states) the "
    "whole table laid out on the grid. As .npy: the rewards as a float64 array.",
    request=RewardsRequest,
    response=RewardsResponse,
    needs=("reward", "grid_shape", "layout"),
    run=rewards,
    renderers={NPY: lambda r: npy(np.asarray(r.rewards, dtype=np.float64))},
    examples=({"states": [0, [4, 4]]},),
)
