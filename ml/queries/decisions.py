"""Queries of decision-making models: Q-values, greedy actions, state values, rewards.

Deep models are asked about observations (vectors), tabular ones about states (flat indices
or [row, col] pairs); `q-values` and `actions` accept either and check it fits the model.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, cast

import numpy as np
from pydantic import BaseModel, Field, TypeAdapter, model_validator

from ml.core.errors import QueryError
from ml.core.validation import MAX_BATCH, grid_states, observation_batch
from ml.queries.base import NPY, PNG, REQUEST, Query, Vector, exposes, npy
from ml.queries.figures import heatmap_png

State = int | list[int]


class QFunction(Protocol):
    observation_dim: int

    def q_function(self, observations: np.ndarray) -> np.ndarray: ...


class Critic(Protocol):
    observation_dim: int
    action_dim: int

    def critic_values(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray: ...

    def act(
        self, observations: np.ndarray, noise: float = 0.0, seed: int | None = None
    ) -> np.ndarray: ...


class Tabular(Protocol):
    V: np.ndarray  # V[s]
    Q: np.ndarray  # Q[s, a]
    policy: np.ndarray  # policy[s]
    grid_shape: tuple[int, ...]
    layout: list[str] | None
    action_names: list[str]
    terminal: list[bool]
    wall: list[bool]
    terminal_mask: np.ndarray  # terminal[s], as an array: no list of 10^6 per query
    wall_mask: np.ndarray  # wall[s]


class RewardTable(Protocol):
    reward: np.ndarray  # r[s] or r[s, a]
    grid_shape: tuple[int, ...]
    layout: list[str] | None
    action_names: list[str]

    def reward_of_features(self, features: np.ndarray) -> np.ndarray: ...


# The whole table of a world answers in JSON up to this many states (a few MB); beyond, a
# request names the states it wants.
MAX_TABLE_STATES = 65_536


class DecisionRequest(BaseModel):
    model_config = REQUEST

    observations: list[Vector] | None = Field(
        None, max_length=MAX_BATCH, description="For models of environments with vectors."
    )
    states: list[State] | None = Field(
        None,
        max_length=MAX_BATCH,
        description="For tabular models: indices, or coordinates in the world's shape "
        "([row, col] on a grid).",
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


class QValuesRequest(DecisionRequest):
    actions: list[Vector] | None = Field(
        None,
        max_length=MAX_BATCH,
        description="For critics (td3, ddpg): the action to value with each observation.",
    )


class QValuesResponse(BaseModel):
    q_values: list[list[float]] = Field(
        description="One row per input: a value per action (discrete actions), or the "
        "critic's value of the given action (one value; TD3's is the smaller of its twins)."
    )
    actions: list[int] | list[list[float]] = Field(
        description="The greedy action of each input, or the actor's action (continuous)."
    )


def critic_table(model: Any, request: QValuesRequest) -> tuple[np.ndarray, np.ndarray]:
    """(q[i, 1], the actor's actions [i, action_dim]) for observation-action pairs."""
    if request.observations is None or request.actions is None:
        raise QueryError(
            f"a {model.kind} model's critic values 'observations' with 'actions', one each",
            field="actions" if request.observations is not None else "observations",
        )
    critic = cast(Critic, model)
    x = observation_batch(request.observations, critic.observation_dim)  # x[B, obs_dim]
    a = observation_batch(request.actions, critic.action_dim, field="actions")  # a[B, act]
    if len(a) != len(x):
        raise QueryError(
            f"{len(x)} observations but {len(a)} actions: send one action per observation",
            field="actions",
        )
    q = np.asarray(critic.critic_values(x, a), dtype=np.float64).reshape(-1, 1)
    if not np.all(np.isfinite(q)):
        raise QueryError("the critic's values of these inputs overflow", field="observations")
    return q, np.asarray(critic.act(x), dtype=np.float64)


def q_values(model: Any, request: QValuesRequest) -> QValuesResponse:
    if exposes(type(model), "critic_values"):
        q, actor = critic_table(model, request)
        return QValuesResponse(q_values=q.tolist(), actions=actor.tolist())
    if request.actions is not None:
        raise QueryError(
            f"'actions' is for critics of continuous actions; a {model.kind} model values "
            "every action of each input",
            field="actions",
        )
    q = q_table(model, request)  # q[i, a]
    return QValuesResponse(q_values=q.tolist(), actions=q.argmax(axis=1).tolist())


Q_OR_TABLE = (("q_function", "observation_dim"), ("Q", "grid_shape"))
ACTORS = (*Q_OR_TABLE, ("act", "critic_values", "observation_dim"))


class ActionsRequest(DecisionRequest):
    epsilon: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Discrete actions: take a uniformly random action with this probability.",
    )
    noise: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Continuous actions: Gaussian exploration noise, its standard deviation "
        "as a fraction of each action dimension's half-range (clipped to the bounds).",
    )
    policy: Literal["greedy", "soft"] = Field(
        "greedy",
        description="soft: sample each action from the soft-optimal (maximum-entropy) policy "
        "of a learned reward (maxent_irl, deep_maxent_irl models) instead of the greedy one.",
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=2**31 - 1,
        description="For epsilon, noise and soft: the same seed, the same draw.",
    )


class ActionsResponse(BaseModel):
    actions: list[int] | list[list[float]] = Field(
        description="The action of each input: an index, or a vector of continuous actions."
    )


def actions_of(model: Any, request: DecisionRequest) -> np.ndarray:
    """The model's action for each input: argmax of a Q-network, or a tabular model's own
    policy (greedy in Q, or the policy that policy evaluation evaluated)."""
    if exposes(type(model), "policy") and request.states is not None:
        table = cast(Tabular, model)
        return table.policy[grid_states(request.states, table.grid_shape)]
    return q_table(model, request).argmax(axis=1)


def actions(model: Any, request: ActionsRequest) -> ActionsResponse:
    if exposes(type(model), "act"):
        if request.observations is None:
            raise QueryError(f"a {model.kind} model is queried by 'observations'", field="states")
        if request.epsilon:
            raise QueryError("epsilon is for discrete actions; use noise", field="epsilon")
        if request.policy == "soft":
            raise QueryError("soft policies are for learned-reward models", field="policy")
        actor = cast(Critic, model)
        x = observation_batch(request.observations, actor.observation_dim)
        chosen = actor.act(x, noise=request.noise, seed=request.seed)
        return ActionsResponse(actions=np.asarray(chosen, dtype=np.float64).tolist())
    if request.noise:
        raise QueryError("noise is for continuous actions; use epsilon", field="noise")
    if request.policy == "soft":
        return ActionsResponse(actions=soft_actions(model, request).tolist())
    greedy = actions_of(model, request)  # [B]
    if request.epsilon > 0.0:
        rng = np.random.default_rng(request.seed)
        n_actions = q_table(model, request).shape[1]
        explore = rng.random(len(greedy)) < request.epsilon
        greedy = np.where(explore, rng.integers(n_actions, size=len(greedy)), greedy)
    return ActionsResponse(actions=greedy.tolist())


def soft_actions(model: Any, request: ActionsRequest) -> np.ndarray:
    """Actions drawn from a reward model's soft-optimal policy pi[s, a]."""
    if not exposes(type(model), "soft_policy"):
        raise QueryError(
            f"a {model.kind} model has no soft-optimal policy (learned-reward models do)",
            field="policy",
        )
    if request.epsilon:
        raise QueryError("a soft policy explores by itself; send no epsilon", field="epsilon")
    if request.states is None:
        raise QueryError(f"a {model.kind} model is queried by 'states'", field="observations")
    table = cast(Tabular, model)
    pi = model.soft_policy[grid_states(request.states, table.grid_shape)]  # pi[B, a]
    u = np.random.default_rng(request.seed).random(len(pi))[:, None]
    return np.minimum((pi.cumsum(axis=1) < u).sum(axis=1), pi.shape[1] - 1)


Q_VALUES = Query(
    name="q-values",
    summary="Q-values of observations or states",
    description="Q(s, a) for every action of each input and the greedy action; for the "
    "critics of continuous actions (td3, ddpg), Q(s, a) of the given action and the actor's "
    "action. As .npy: the (inputs, values) float64 array.",
    request=QValuesRequest,
    response=QValuesResponse,
    needs=(*Q_OR_TABLE, ("critic_values", "act", "observation_dim")),
    run=q_values,
    renderers={NPY: lambda r: npy(np.asarray(r.q_values, dtype=np.float64))},
    examples=(
        {"observations": [[0.0, 0.0, 0.0, 0.0]]},
        {"states": [0, [1, 2]]},
        {"observations": [[1.0, 0.0, 0.0]], "actions": [[0.5]]},
    ),
)


ACTIONS = Query(
    name="actions",
    summary="The model's actions for observations or states",
    description="The action the trained policy takes in each input: greedy (argmax of Q, a "
    "tabular model's policy) or epsilon-greedy for discrete actions, the actor's action with "
    "optional exploration noise for continuous ones.",
    request=ActionsRequest,
    response=ActionsResponse,
    needs=ACTORS,
    run=actions,
    examples=(
        {"observations": [[0.0, 0.0, 0.0, 0.0]]},
        {"observations": [[0.0, 0.0, 0.0, 0.0]], "epsilon": 0.1, "seed": 0},
        {"states": [0, [1, 2]], "policy": "soft", "seed": 0},
    ),
)


class ValuesRequest(BaseModel):
    model_config = REQUEST

    states: list[State] | None = Field(
        None,
        max_length=MAX_BATCH,
        description="Indices or coordinates of the states to answer for; omit for the whole "
        f"table (worlds of at most {MAX_TABLE_STATES} states).",
    )


class ValuesResponse(BaseModel):
    values: list[float] = Field(description="V(s) per requested state, or per state in order.")
    policy: list[int] = Field(description="The model's action in each of those states.")
    terminal: list[bool] = Field(
        description="Whether each state ends an episode (its value is 0, its action means nothing)."
    )
    wall: list[bool] = Field(description="Whether each state is a wall no agent is ever in.")
    action_names: list[str]
    shape: list[int] = Field(description="How states lay out: [rows, cols] for grids.")
    states: list[int] | None = Field(None, description="The requested states, as indices.")
    layout: list[str] | None = Field(None, description="The map, one string per row.")
    grid: list[list[float]] | None = Field(
        None, description="V laid out on the grid (whole tables of 2-D worlds)."
    )


def values(model: Tabular, request: ValuesRequest) -> ValuesResponse:
    shape = list(model.grid_shape)
    common = {"action_names": list(model.action_names), "shape": shape}
    if request.states is not None:
        index = grid_states(request.states, model.grid_shape)
        return ValuesResponse(
            values=model.V[index].tolist(),
            policy=model.policy[index].tolist(),
            terminal=model.terminal_mask[index].tolist(),
            wall=model.wall_mask[index].tolist(),
            states=index.tolist(),
            **common,
        )
    if len(model.V) > MAX_TABLE_STATES:
        raise QueryError(
            f"this world has {len(model.V)} states, more than the {MAX_TABLE_STATES} a whole "
            f"table answers; ask for up to {MAX_BATCH} 'states' at a time",
            field="states",
        )
    return ValuesResponse(
        values=model.V.tolist(),
        policy=model.policy.tolist(),
        terminal=list(model.terminal),
        wall=list(model.wall),
        layout=model.layout,
        grid=model.V.reshape(model.grid_shape).tolist() if len(shape) == 2 else None,
        **common,
    )


VALUES = Query(
    name="values",
    summary="State values and policy of a tabular model",
    description="V(s) and the model's action in every state (or in the requested ones), "
    "with the terminal and wall masks and, for grids, V laid out on the grid. As .npy: the "
    "values as a float64 array, in the world's shape for a whole table; as PNG (a whole "
    "table of a 2-D world): a heatmap of V with walls, terminal cells and the policy's "
    "arrows.",
    request=ValuesRequest,
    response=ValuesResponse,
    needs=("V", "Q", "policy", "grid_shape", "layout", "action_names", "terminal", "wall"),
    run=values,
    renderers={NPY: lambda r: npy(values_array(r)), PNG: lambda r: values_png(r)},
    examples=({}, {"states": [0, [1, 2]]}),
)


def whole_grid(shape: list[int] | None, states: Any, what: str) -> tuple[int, int]:
    """The grid a heatmap is drawn on: a whole table of a 2-D world, or a QueryError."""
    if states is not None or shape is None or len(shape) != 2:
        raise QueryError(
            f"a heatmap of {what} is drawn for the whole table of a 2-D world: ask without "
            "states (GET), or for JSON",
            field="format",
        )
    return shape[0], shape[1]


def values_png(response: ValuesResponse) -> bytes:
    """V on the grid, walls grey, terminal cells outlined, the policy's arrows."""
    rows, cols = whole_grid(response.shape, response.states, "values")
    return heatmap_png(
        np.asarray(response.values).reshape(rows, cols),
        title="V(s) and the policy",
        wall=np.asarray(response.wall).reshape(rows, cols),
        terminal=np.asarray(response.terminal).reshape(rows, cols),
        policy=np.asarray(response.policy),
        action_names=response.action_names,
    )


def rewards_png(response: RewardsResponse) -> bytes:
    """The learned reward on the grid (the best action's, for a state-action reward), walls
    of a map grey."""
    given = None if response.shape is not None else "inputs"
    rows, cols = whole_grid(response.shape, given, "rewards")
    table = np.asarray(response.rewards, dtype=np.float64)
    title = "learned reward r(s)"
    if table.ndim == 2:
        table, title = table.max(axis=1), "learned reward max_a r(s, a)"
    wall = None
    if response.layout is not None:
        wall = np.array([[cell == "#" for cell in row] for row in response.layout])
    beside = None
    if response.true_rewards is not None:
        beside = (np.asarray(response.true_rewards), "the world's reward r(s)")
    return heatmap_png(table.reshape(rows, cols), title=title, wall=wall, beside=beside)


def values_array(response: ValuesResponse) -> np.ndarray:
    values = np.asarray(response.values, dtype=np.float64)
    return values if response.states is not None else values.reshape(response.shape)


class RewardsRequest(BaseModel):
    model_config = REQUEST

    states: list[State] | None = Field(
        None,
        max_length=MAX_BATCH,
        description="Indices or coordinates of states of the model's world.",
    )
    features: list[Vector] | None = Field(
        None,
        max_length=MAX_BATCH,
        description="Instead of states: feature vectors, as many numbers as the features the "
        "reward was learned over; any vectors, not only the world's (a reward network "
        "generalises to them).",
    )
    actions: list[int] | None = Field(
        None,
        max_length=MAX_BATCH,
        description="For a state-action reward: one action per state or feature vector, to "
        "answer r(s, a) for those pairs; without, every action's reward of each input.",
    )

    @model_validator(mode="after")
    def _one_input(self) -> RewardsRequest:
        if self.states is not None and self.features is not None:
            raise ValueError("send 'states' or 'features', not both")
        if self.actions is not None and self.states is None and self.features is None:
            raise ValueError("'actions' go with 'states' or 'features'")
        return self


class RewardsResponse(BaseModel):
    form: Literal["state", "state_action"] = Field(
        description="r(s), received in s; or r(s, a), of taking a in s."
    )
    rewards: list[float] | list[list[float]] = Field(
        description="One reward per input (r(s), or r(s, a) of the given action); for a "
        "state-action reward without actions, one row per input with a reward per action. "
        "Without inputs: the whole table, state by state."
    )
    action_names: list[str] | None = Field(
        None, description="What the columns of a state-action reward's rows are."
    )
    grid: list[list[float]] | None = Field(
        None, description="A state reward's whole table laid out on a 2-D world."
    )
    shape: list[int] | None = Field(None, description="How the whole table's states lay out.")
    layout: list[str] | None = Field(None, description="The map of a grid world.")
    true_rewards: list[float] | None = Field(
        None,
        description="With the whole table: the world's own reward r(s) (what an expert "
        "demonstrates), state by state, when the model's world can be rebuilt from its "
        "config (not an uploaded MDP). A learned reward matches it only up to shaping and "
        "scale: compare shapes, not numbers.",
    )


def world_reward(model: Any) -> np.ndarray | None:
    """r[s] of the world the model was learned on, rebuilt from its config; None when the
    config names no world that can be rebuilt (an uploaded MDP is not kept with models)."""
    from ml.tabular.worlds import EnvSpec, MDPEnv, build_mdp

    env = model.metadata.get("config", {}).get("env")
    if env is None:
        return None
    spec = TypeAdapter(EnvSpec).validate_python(env)
    if isinstance(spec, MDPEnv):
        return None
    return np.asarray(build_mdp(spec).state_reward, dtype=np.float64)


def rewards(model: RewardTable, request: RewardsRequest) -> RewardsResponse:
    form = "state" if model.reward.ndim == 1 else "state_action"
    per_action = {"action_names": list(model.action_names)} if form == "state_action" else {}
    if request.states is None and request.features is None:
        if len(model.reward) > MAX_TABLE_STATES:
            raise QueryError(
                f"this world has {len(model.reward)} states, more than the {MAX_TABLE_STATES} "
                f"a whole table answers; ask for up to {MAX_BATCH} 'states' at a time",
                field="states",
            )
        grid = None
        if form == "state" and len(model.grid_shape) == 2:
            grid = model.reward.reshape(model.grid_shape).tolist()
        shape, layout = list(model.grid_shape), model.layout
        table = model.reward.tolist()
        truth = world_reward(model)
        return RewardsResponse(
            form=form, rewards=table, grid=grid, shape=shape, layout=layout, **per_action,
            true_rewards=None if truth is None else truth.tolist(),
        )  # fmt: skip
    if request.features is not None:
        x = np.asarray(request.features, dtype=np.float64)  # x[B, k]
        r = np.asarray(model.reward_of_features(x), dtype=np.float64)
        field = "features"
    else:
        r = model.reward[grid_states(request.states or [], model.grid_shape)]
        field = "states"
    if not np.all(np.isfinite(r)):
        raise QueryError("the rewards of these inputs overflow", field=field)
    if request.actions is not None:
        if form == "state":
            raise QueryError(
                "this reward is of states alone (r(s), whatever the action); send no actions",
                field="actions",
            )
        if len(request.actions) != len(r):
            raise QueryError(
                f"send one action per input: {len(request.actions)} actions for {len(r)} {field}",
                field="actions",
            )
        chosen = np.asarray(request.actions)
        if chosen.min() < 0 or chosen.max() >= r.shape[1]:
            raise QueryError(f"actions are 0..{r.shape[1] - 1}", field="actions")
        return RewardsResponse(form=form, rewards=r[np.arange(len(r)), chosen].tolist())
    return RewardsResponse(form=form, rewards=r.tolist(), **per_action)


REWARDS = Query(
    name="rewards",
    summary="Learned rewards of states, state-actions or feature vectors",
    description="The learned reward of the given states (indices or coordinates) or feature "
    "vectors: r(s), or for a state-action reward r(s, a) of the given actions or of every "
    "action; without inputs (GET) the whole table, laid out on the grid for a 2-D world. As "
    ".npy: the rewards as a float64 array; as PNG (the whole table of a 2-D world): a "
    "heatmap of the reward.",
    request=RewardsRequest,
    response=RewardsResponse,
    needs=("reward", "grid_shape", "layout"),
    run=rewards,
    renderers={
        NPY: lambda r: npy(np.asarray(r.rewards, dtype=np.float64)),
        PNG: lambda r: rewards_png(r),
    },
    examples=(
        {"states": [0, [4, 4]]},
        {"features": [[0.5, 0.5, 0.25, 0.25, 0.25]]},
        {"states": [0, 1], "actions": [2, 1]},
    ),
)
