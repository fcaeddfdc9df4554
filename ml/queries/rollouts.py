"""The `rollouts` query: episodes of a model's policy, step by step, as JSON or (through the
service) saved as a `trajectories` dataset that an inverse-RL job can learn from.

Models of Gymnasium environments are played in their environment (a Q-network or Q-function
greedily, an actor without noise); tabular models are sampled from their world, rebuilt from
the model's own config (an uploaded MDP's world is not kept with the model, so its models
cannot roll out).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field, TypeAdapter

from ml.core.errors import QueryError
from ml.queries.base import REQUEST, Query, SavedDataset, exposes
from ml.rl.envs import PolicyFn
from ml.rl.rollouts import Rollouts, play, play_tabular
from ml.tabular.mdp import TabularMDP

MAX_EPISODES = 100
MAX_TABULAR_STEPS = 10_000


class RolloutsRequest(BaseModel):
    model_config = REQUEST

    episodes: int = Field(10, ge=1, le=MAX_EPISODES, description="Episodes to play.")
    seed: int = Field(
        0, ge=0, le=2**31 - 1, description="Episode i starts from reset(seed + i) (Gymnasium)."
    )
    max_steps: int = Field(
        100,
        ge=1,
        le=MAX_TABULAR_STEPS,
        description="Tabular worlds: most actions per episode (Gymnasium environments end at "
        "their own time limit).",
    )
    save_as_dataset: bool = Field(
        False,
        description="Also store the episodes as a `trajectories` dataset (needs the train "
        "scope); the answer's `dataset` names it.",
    )
    dataset_name: str | None = Field(
        None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$", description="Its name."
    )


class RolloutsResponse(BaseModel):
    episodes: int
    seed: int
    episode_lengths: list[int] = Field(description="Steps of each episode, in order.")
    returns: list[float] | None = Field(
        None, description="Undiscounted return of each episode (Gymnasium environments)."
    )
    observations: list[list[float]] | None = Field(
        None,
        description="s_t of every step, episodes back to back (Gymnasium; images flattened "
        "row-major from [C, H, W]).",
    )
    states: list[int] | None = Field(None, description="s_t of every step (tabular).")
    actions: list[int] | list[list[float]] = Field(description="a_t of every step.")
    rewards: list[float] | None = Field(None, description="r_t of every step (Gymnasium).")
    dataset: dict[str, Any] | None = Field(
        None, description="The stored `trajectories` dataset, when `save_as_dataset`."
    )


def policy_of(model: Any) -> PolicyFn:
    """The policy an environment model plays by: its actor (without noise), or greedy in its
    Q-function."""
    if exposes(type(model), "act"):
        return lambda observations: model.act(observations)
    return lambda observations: model.q_function(observations).argmax(axis=1)


def world_of(model: Any, what: str = "roll out") -> TabularMDP:
    """A tabular model's world, rebuilt from its config; `what` the model then cannot do when
    the world is an uploaded MDP (not kept with the model)."""
    from ml.tabular.worlds import EnvSpec, MDPEnv, build_mdp

    env = TypeAdapter(EnvSpec).validate_python(model.metadata["config"]["env"])
    if isinstance(env, MDPEnv):
        raise QueryError(
            "this model's world is an uploaded MDP, which the model does not keep: it cannot "
            f"{what}; sample the MDP with its dataset instead",
            field="model",
        )
    return build_mdp(env)


def rollouts_of(model: Any, request: RolloutsRequest) -> Rollouts:
    """The episodes a request asks for."""
    if exposes(type(model), "grid_shape"):
        mdp = world_of(model)
        return play_tabular(mdp, model.policy, request.episodes, request.seed, request.max_steps)
    return play(policy_of(model), str(model.env_id), request.episodes, request.seed)


def rollouts(model: Any, request: RolloutsRequest) -> RolloutsResponse:
    played = rollouts_of(model, request)
    arrays = played.arrays
    answer: dict[str, Any] = {
        "episodes": len(arrays["episode_lengths"]),
        "seed": request.seed,
        "episode_lengths": arrays["episode_lengths"].tolist(),
        "returns": played.returns,
        "actions": arrays["actions"].tolist(),
    }
    for name in ("observations", "states", "rewards"):
        if name in arrays:
            values = arrays[name]
            flat = values.reshape(len(values), -1) if name == "observations" else values
            answer[name] = flat.tolist()
    return RolloutsResponse(**answer)


def saved(request: RolloutsRequest, response: RolloutsResponse) -> SavedDataset:
    return SavedDataset("trajectories", request.dataset_name, trajectories_of(response))


def trajectories_of(response: RolloutsResponse) -> dict[str, np.ndarray]:
    """The answer's episodes as the arrays of a `trajectories` dataset."""
    arrays: dict[str, np.ndarray] = {
        "episode_lengths": np.asarray(response.episode_lengths, dtype=np.int64)
    }
    if response.states is not None:
        arrays["states"] = np.asarray(response.states, dtype=np.int64)
        arrays["actions"] = np.asarray(response.actions, dtype=np.int64)
    else:
        arrays["observations"] = np.asarray(response.observations, dtype=np.float32)
        discrete = all(isinstance(a, int) for a in response.actions)
        arrays["actions"] = np.asarray(response.actions, np.int64 if discrete else np.float32)
    if response.rewards is not None:
        arrays["rewards"] = np.asarray(response.rewards, dtype=np.float32)
    return arrays


ROLLOUTS = Query(
    name="rollouts",
    summary="Episodes of the model's policy, step by step",
    description="Plays `episodes` episodes of the model's policy (greedy; an actor without "
    "noise; a tabular model's policy sampled in its world) and answers every step's state "
    f"or observation, action and reward (at most {MAX_EPISODES} episodes). With "
    "`save_as_dataset`, also stores them as a `trajectories` dataset an inverse-RL job can "
    "name.",
    request=RolloutsRequest,
    response=RolloutsResponse,
    needs=(("q_function", "env_id"), ("act", "env_id"), ("policy", "grid_shape")),
    run=rollouts,
    examples=({"episodes": 5, "seed": 0}, {"episodes": 20, "save_as_dataset": True}),
    keeps=lambda request: request.save_as_dataset,
    dataset_of=saved,
)
