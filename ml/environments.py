"""The environments Crucible's algorithms act in, described for `GET /v1/environments`.

Two families: Gymnasium ids (`ml.rl.envs`, for the deep-RL and fitted-Q algorithms, named by
id in `env`) and tabular worlds (`ml.tabular.worlds`, for dynamic programming and inverse RL,
named by an object with a `kind`). Which algorithms accept each is not a hand-kept list: an
algorithm accepts an environment when its config validates with it in `env` (or in the older
`env_id`), so adding an environment to a config's type is all it takes to be listed here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from ml.registry import ALGORITHMS
from ml.rl.envs import ENV_IDS, env_spaces
from ml.rl.pixels import PIXEL_ENV_IDS
from ml.rl.vector import spaces_of
from ml.tabular.objectworld import BinaryWorldEnv, ObjectWorldEnv
from ml.tabular.toy_text import CliffWalkingEnv, FrozenLakeEnv, TaxiEnv
from ml.tabular.worlds import GridEnv, build_mdp

WORLD_DESCRIPTIONS = {
    "grid": "A grid world written as text (S start, . free, # wall, G goal, H hazard), with "
    "step, goal, hazard and bump rewards, slip and teleports; or an open `size` room.",
    "frozen_lake": "Gymnasium's FrozenLake-v1 (4x4 or 8x8, slippery or not), exact dynamics.",
    "taxi": "Gymnasium's Taxi (500 states, 6 actions), exact dynamics.",
    "cliff_walking": "Gymnasium's CliffWalking-v1 (Sutton & Barto Example 6.6).",
    "objectworld": "Levine et al.'s objectworld (2011): an N x N grid of coloured objects, 5 "
    "actions with a 30% random move, a reward that is not linear in its distance features.",
    "binaryworld": "Wulfmeier et al.'s binaryworld (2015): blue and red cells, a reward that "
    "counts the blue ones around each cell.",
    "mdp": "An uploaded `mdp` dataset: P, R, optionally terminal states, a start distribution "
    "and state features.",
}


@dataclass(frozen=True)
class Environment:
    name: str  # the Gymnasium id, or the world's kind
    family: Literal["gymnasium", "tabular"]
    description: str
    observation: dict[str, Any]
    action: dict[str, Any]
    example: dict[str, Any]  # what goes in a config's `env`
    algorithms: list[str] = field(default_factory=list)
    max_episode_steps: int | None = None


def accepting(env: Any) -> list[str]:
    """The algorithms whose config validates with `env` as its environment."""
    names = []
    for name, algorithm in ALGORITHMS.items():
        fields = algorithm.config.model_fields
        for key in ("env", "env_id"):
            if key not in fields:
                continue
            try:
                algorithm.config.model_validate({key: env})
            except ValidationError:
                continue
            names.append(name)
            break
    return names


def _gymnasium(env_id: str) -> Environment:
    spaces = env_spaces(env_id)
    if spaces.discrete:
        action: dict[str, Any] = {"type": "discrete", "n": spaces.n_actions}
    else:
        action = {
            "type": "box",
            "shape": [spaces.action_dim],
            "low": list(spaces.action_low),
            "high": list(spaces.action_high),
        }
    return Environment(
        name=env_id,
        family="gymnasium",
        description=f"Gymnasium's {env_id}.",
        observation={"type": "box", "shape": [spaces.observation_dim]},
        action=action,
        example={"env": env_id},
        algorithms=accepting(env_id),
        max_episode_steps=spaces.max_episode_steps,
    )


def _world(kind: str) -> Environment:
    example: dict[str, Any] = {"kind": kind}
    if kind == "mdp":
        example["dataset"] = {"kind": "uploaded", "id": "<dataset id>"}
        observation: dict[str, Any] = {"type": "discrete", "n": "from the dataset"}
        action: dict[str, Any] = {"type": "discrete", "n": "from the dataset"}
    else:
        spec = {"grid": GridEnv, "frozen_lake": FrozenLakeEnv, "taxi": TaxiEnv,
                "cliff_walking": CliffWalkingEnv, "objectworld": ObjectWorldEnv,
                "binaryworld": BinaryWorldEnv}[kind]()  # fmt: skip
        mdp = build_mdp(spec)
        observation = {"type": "discrete", "n": mdp.n_states, "shape": list(mdp.shape)}
        action = {"type": "discrete", "n": mdp.n_actions, "names": list(mdp.action_names)}
    return Environment(
        name=kind,
        family="tabular",
        description=WORLD_DESCRIPTIONS[kind],
        observation=observation,
        action=action,
        example={"env": example},
        algorithms=accepting(example),
    )


def _pixels(env_id: str) -> Environment:
    spaces = spaces_of(env_id)
    return Environment(
        name=env_id,
        family="gymnasium",
        description=f"{env_id}: a small grid world seen as an image (`ml.rl.pixels`), for "
        "conv Q-networks.",
        observation={"type": "box", "shape": list(spaces.observation_shape)},
        action={"type": "discrete", "n": spaces.n_actions},
        example={"env": env_id, "network": "conv"},
        algorithms=accepting(env_id),
        max_episode_steps=spaces.max_episode_steps,
    )


@functools.cache
def catalog() -> tuple[Environment, ...]:
    """Every environment, Gymnasium ids first; computed once."""
    return tuple(
        [_gymnasium(env_id) for env_id in ENV_IDS]
        + [_pixels(env_id) for env_id in PIXEL_ENV_IDS]
        + [_world(kind) for kind in WORLD_DESCRIPTIONS]
    )
