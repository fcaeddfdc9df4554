"""Gymnasium's toy-text environments with known dynamics, read from their own tables.

FrozenLake, Taxi and CliffWalking publish their full model as `env.unwrapped.P[s][a]`, a list
of (probability, next state, reward, done) tuples; the MDP here is built from that table, so
values computed by `ml.tabular.dp` match Gymnasium's dynamics exactly (V* on slippery
FrozenLake 4x4 is 0.0689 at gamma 0.9). A state that a `done` transition enters is terminal;
the table's transitions out of terminal states are ignored (Taxi lists some), and a world in
which a state is entered from a reachable state both ending and not ending the episode is
refused rather than guessed at. (Taxi's delivered states other than the one a drop-off
enters are never reached; their table entries are kept as listed.)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ml.tabular.mdp import TabularMDP, from_triplets


class FrozenLakeEnv(BaseModel):
    """Gymnasium's FrozenLake-v1, with its exact dynamics (reward 1 on reaching the goal)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["frozen_lake"] = "frozen_lake"
    map_name: Literal["4x4", "8x8"] = Field(default="4x4", description="Gymnasium's built-in map.")
    is_slippery: bool = Field(
        default=True, description="Move in the intended direction with probability 1/3 only."
    )


class TaxiEnv(BaseModel):
    """Gymnasium's Taxi (Dietterich 2000): 500 states (taxi row, column, passenger location,
    destination), 6 actions; -1 per step, +20 for a delivery, -10 for a wrong pick-up or
    drop-off."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["taxi"] = "taxi"


class CliffWalkingEnv(BaseModel):
    """Gymnasium's CliffWalking-v1 (Sutton & Barto Example 6.6): a 4 x 12 grid, -1 per step,
    -100 and back to the start for stepping into the cliff."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["cliff_walking"] = "cliff_walking"
    is_slippery: bool = Field(
        default=False, description="Gymnasium's slippery variant (random moves)."
    )


ToyTextEnv = FrozenLakeEnv | TaxiEnv | CliffWalkingEnv

FROZEN_LAKE_ACTIONS = ("left", "down", "right", "up")
STATES = {"taxi": 500, "cliff_walking": 48}
FROZEN_LAKE_CELLS = {"4x4": 16, "8x8": 64}


def n_states(env: ToyTextEnv) -> int:
    if isinstance(env, FrozenLakeEnv):
        return FROZEN_LAKE_CELLS[env.map_name]
    return STATES[env.kind]


def make_gym(env: ToyTextEnv) -> Any:
    """The Gymnasium environment a config names (Taxi-v4 where installed, else v3)."""
    import gymnasium as gym  # imported here: grids do not need it

    if isinstance(env, FrozenLakeEnv):
        return gym.make("FrozenLake-v1", map_name=env.map_name, is_slippery=env.is_slippery)
    if isinstance(env, CliffWalkingEnv):
        return gym.make("CliffWalking-v1", is_slippery=env.is_slippery)
    return gym.make("Taxi-v4" if "Taxi-v4" in gym.registry else "Taxi-v3")


def build_toy_text(env: ToyTextEnv) -> TabularMDP:
    """The MDP of Gymnasium's own transition table (see the module docstring)."""
    gym_env = make_gym(env)
    inner: Any = gym_env.unwrapped
    table: dict[int, dict[int, list[tuple[float, int, float, bool]]]] = inner.P
    gym_env.close()
    n, n_actions = len(table), len(table[0])
    terminal = np.zeros(n, dtype=bool)
    for s in range(n):
        for a in range(n_actions):
            for _, nxt, _, done in table[s][a]:
                terminal[nxt] |= bool(done)
    reachable = _reachable(table, np.asarray(inner.initial_state_distrib) > 0, terminal)
    entries: list[tuple[int, int, float, float]] = []  # (s * A + a, s', p, r)
    for s in range(n):
        for a in range(n_actions):
            if terminal[s]:  # absorbing, as grids build them; DP pins its value at 0
                entries.append((s * n_actions + a, s, 1.0, 0.0))
                continue
            for prob, nxt, reward, done in table[s][a]:
                if reachable[s] and terminal[nxt] != bool(done):
                    raise ValueError(
                        f"{env.kind}: state {nxt} is entered both ending and not ending the "
                        "episode; it cannot be modelled as a terminal state"
                    )
                entries.append((s * n_actions + a, nxt, prob, reward))
    flat, targets, p, r = (np.asarray(column) for column in zip(*entries, strict=True))
    P = from_triplets(flat, targets, p, n, n_actions)
    R = np.bincount(flat, weights=p * r, minlength=n * n_actions).reshape(n, n_actions)
    start = np.asarray(inner.initial_state_distrib, dtype=np.float64)
    return TabularMDP(
        transitions=P,
        R=R,
        terminal=terminal,
        start=start / start.sum(),
        shape=_shape(env, inner),
        layout=_layout(env, inner),
        action_names=_action_names(env),
        wall=np.zeros(n, dtype=bool),
        state_reward=_state_reward(env, inner, n),
    )


def _reachable(
    table: dict[int, dict[int, list[tuple[float, int, float, bool]]]],
    start: np.ndarray,
    terminal: np.ndarray,
) -> np.ndarray:
    """reachable[s]: s can be reached from a start state without passing a terminal one."""
    reachable = start.copy()
    frontier = [int(s) for s in np.flatnonzero(start)]
    while frontier:
        s = frontier.pop()
        if terminal[s]:
            continue
        for outcomes in table[s].values():
            for prob, nxt, _, _ in outcomes:
                if prob > 0 and not reachable[nxt]:
                    reachable[nxt] = True
                    frontier.append(nxt)
    return reachable


def _shape(env: ToyTextEnv, inner: Any) -> tuple[int, ...]:
    if isinstance(env, TaxiEnv):
        return (5, 5, 5, 4)  # taxi row, taxi column, passenger location, destination
    if isinstance(env, CliffWalkingEnv):
        return (4, 12)
    return (len(inner.desc), len(inner.desc[0]))


def _layout(env: ToyTextEnv, inner: Any) -> tuple[str, ...] | None:
    if isinstance(env, FrozenLakeEnv):
        return tuple(b"".join(row).decode() for row in inner.desc)
    if isinstance(env, CliffWalkingEnv):  # C: the cliff (back to S for -100, not terminal)
        return ("." * 12, "." * 12, "." * 12, "S" + "C" * 10 + "G")
    return None


def _action_names(env: ToyTextEnv) -> tuple[str, ...]:
    if isinstance(env, TaxiEnv):
        return ("south", "north", "east", "west", "pickup", "dropoff")
    if isinstance(env, CliffWalkingEnv):
        return ("up", "right", "down", "left")
    return FROZEN_LAKE_ACTIONS


def _state_reward(env: ToyTextEnv, inner: Any, n: int) -> np.ndarray:
    """The reward for entering each state where it depends on the state alone (FrozenLake's
    goal); Taxi's and CliffWalking's depend on the action, so they have none (zeros)."""
    if isinstance(env, FrozenLakeEnv):
        cells = np.array([list(b"".join(row).decode()) for row in inner.desc]).reshape(-1)
        return (cells == "G").astype(np.float64)
    return np.zeros(n)
