"""Tabular MDPs on grids: the environments of the dynamic-programming and inverse-RL models.

A `TabularMDP` is the full model of a finite MDP as arrays (transition probabilities
`P[s, a, s']`, expected rewards `R[s, a]`, a terminal mask and a start distribution), which is
what dynamic programming (`ml.tabular.dp`) needs. Two builders make one, chosen in a
config by `kind`:

- `GridEnv` (kind "grid"): a text layout such as `["S..#", "..#G"]` with a step reward and a
  slip probability, in the style of Russell & Norvig's 4x3 world (AIMA, Section 17.1): the
  intended move succeeds with probability 1 - slip, otherwise the agent moves to one of the two
  perpendicular directions, split equally; a move into a wall or off the grid stays in place.
- `FrozenLakeEnv` (kind "frozen_lake"): Gymnasium's FrozenLake-v1, read from
  `env.unwrapped.P`, so that values computed here match Gymnasium's dynamics exactly.

States are grid cells numbered `row * cols + col`; walls are states too (unreachable and
absorbing) so that this numbering holds. Actions follow Gymnasium's FrozenLake order: 0 left,
1 down, 2 right, 3 up.

Rewards are rewards for *entering* a cell: `goal_reward` on entering a goal, `hazard_reward`
on entering a hazard, `step_reward` on entering (or staying in, after bumping into a wall) any
other cell. Goals and hazards are terminal: their value is 0 and nothing follows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

ACTION_NAMES = ("left", "down", "right", "up")
# (d_row, d_col) of each action, in ACTION_NAMES order.
MOVES = np.array([[0, -1], [1, 0], [0, 1], [-1, 0]])
# The two directions perpendicular to each action: where a slip takes the agent.
PERPENDICULAR = {0: (1, 3), 1: (0, 2), 2: (1, 3), 3: (0, 2)}

CELLS = {"S": "start", ".": "free", "#": "wall", "G": "goal", "H": "hazard"}
MAX_SIDE = 50
# Dense P[s, a, s'] grows as cells^2: 1024 cells is 32 MB of float64, and keeps a value
# iteration sweep (or one soft value-iteration step of MaxEnt IRL) in the millisecond range.
MAX_CELLS = 1024


@dataclass(frozen=True)
class TabularMDP:
    """A finite MDP as dense arrays; see the module docstring for the conventions."""

    P: np.ndarray  # P[s, a, s'] transition probabilities, rows sum to 1
    R: np.ndarray  # R[s, a] expected reward of taking a in s: sum_s' P[s, a, s'] r(s, a, s')
    terminal: np.ndarray  # terminal[s]: value 0, no bootstrapping from it
    start: np.ndarray  # start[s]: initial state distribution
    shape: tuple[int, int]  # (rows, cols); state s is cell (s // cols, s % cols)
    layout: tuple[str, ...]  # the map, one string per row
    action_names: tuple[str, ...]
    wall: np.ndarray  # wall[s]: a cell no agent can be in (never true for FrozenLake)
    # state_reward[s]: the reward for entering s (both builders' rewards depend on s' alone);
    # the "true reward" that inverse RL tries to recover.
    state_reward: np.ndarray

    @property
    def n_states(self) -> int:
        return int(self.P.shape[0])

    @property
    def n_actions(self) -> int:
        return int(self.P.shape[1])

    def to_grid(self, per_state: np.ndarray) -> list[list[float]]:
        """A per-state vector as a rows x cols nested list (row-major)."""
        rows, cols = self.shape
        return np.asarray(per_state, dtype=np.float64).reshape(rows, cols).tolist()


# -- configs -----------------------------------------------------------------------------------
DEFAULT_LAYOUT = ["...G", ".#.H", "S..."]  # Russell & Norvig's 4x3 world (AIMA Fig. 17.1)


class GridEnv(BaseModel):
    """A grid world drawn as text: S start, . free, # wall, G goal, H hazard."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["grid"] = "grid"
    layout: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LAYOUT),
        min_length=1,
        max_length=MAX_SIDE,
        description="Rows of the map, all the same length: S start (exactly one), . free, "
        "# wall, G goal (at least one; terminal), H hazard (terminal). "
        f"At most {MAX_SIDE} rows and columns and {MAX_CELLS} cells.",
    )
    step_reward: float = Field(
        default=-0.04, ge=-100.0, le=100.0, description="Reward for each move into a free cell."
    )
    goal_reward: float = Field(
        default=1.0, ge=-1000.0, le=1000.0, description="Reward for entering a goal cell."
    )
    hazard_reward: float = Field(
        default=-1.0, ge=-1000.0, le=1000.0, description="Reward for entering a hazard cell."
    )
    slip: float = Field(
        default=0.2,
        ge=0.0,
        lt=1.0,
        description="Probability of moving in one of the two perpendicular directions "
        "instead of the intended one (split equally).",
    )

    @field_validator("layout")
    @classmethod
    def _check_layout(cls, layout: list[str]) -> list[str]:
        check_layout(layout)
        return layout


class FrozenLakeEnv(BaseModel):
    """Gymnasium's FrozenLake-v1, with its exact dynamics (reward 1 on reaching the goal)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["frozen_lake"] = "frozen_lake"
    map_name: Literal["4x4", "8x8"] = Field(default="4x4", description="Gymnasium's built-in map.")
    is_slippery: bool = Field(
        default=True, description="Move in the intended direction with probability 1/3 only."
    )


EnvSpec = Annotated[GridEnv | FrozenLakeEnv, Field(discriminator="kind")]


def check_layout(layout: list[str]) -> None:
    """Raise ValueError (a pydantic validation error inside a config) if the map is unusable."""
    if not layout:
        raise ValueError("the layout needs at least one row")
    cols = len(layout[0])
    if cols == 0:
        raise ValueError("layout rows must not be empty")
    if len(layout) > MAX_SIDE or cols > MAX_SIDE:
        raise ValueError(f"the grid is at most {MAX_SIDE}x{MAX_SIDE}, got {len(layout)}x{cols}")
    if len(layout) * cols > MAX_CELLS:
        raise ValueError(
            f"the grid has at most {MAX_CELLS} cells (e.g. 32x32), got "
            f"{len(layout)}x{cols} = {len(layout) * cols}"
        )
    for i, row in enumerate(layout):
        if len(row) != cols:
            raise ValueError(
                f"the layout must be rectangular: row {i} has {len(row)} cells, row 0 has {cols}"
            )
        unknown = sorted(set(row) - set(CELLS))
        if unknown:
            known = ", ".join(f"'{c}' {name}" for c, name in CELLS.items())
            raise ValueError(f"row {i} has unknown cell(s) {unknown}; known cells: {known}")
    text = "".join(layout)
    if text.count("S") != 1:
        raise ValueError(f"the layout needs exactly one start 'S', found {text.count('S')}")
    if "G" not in text:
        raise ValueError("the layout needs at least one goal 'G'")


# -- builders ----------------------------------------------------------------------------------
FROZEN_LAKE_CELLS = {"4x4": 16, "8x8": 64}  # Gymnasium's two built-in maps


def n_cells(env: GridEnv | FrozenLakeEnv) -> int:
    """States of the MDP `build_mdp(env)` makes (one per cell), without building it."""
    if isinstance(env, GridEnv):
        return len(env.layout) * len(env.layout[0])
    return FROZEN_LAKE_CELLS[env.map_name]


def build_mdp(env: GridEnv | FrozenLakeEnv) -> TabularMDP:
    """The tabular MDP of an environment config."""
    if isinstance(env, GridEnv):
        return build_grid(env)
    return build_frozen_lake(env)


def build_grid(env: GridEnv) -> TabularMDP:
    """Transition and reward arrays of a text grid world (see the module docstring)."""
    check_layout(env.layout)
    rows, cols = len(env.layout), len(env.layout[0])
    n_states, n_actions = rows * cols, len(ACTION_NAMES)
    cells = np.array([list(row) for row in env.layout]).reshape(-1)  # cells[s]
    wall = cells == "#"
    terminal = (cells == "G") | (cells == "H") | wall
    state_reward = np.full(n_states, env.step_reward)  # reward for entering s
    state_reward[cells == "G"] = env.goal_reward
    state_reward[cells == "H"] = env.hazard_reward
    state_reward[wall] = 0.0

    def destination(s: int, a: int) -> int:
        r, c = divmod(s, cols)
        nr, nc = r + MOVES[a, 0], c + MOVES[a, 1]
        if not (0 <= nr < rows and 0 <= nc < cols) or wall[nr * cols + nc]:
            return s  # bumped into the edge or a wall: stay
        return int(nr * cols + nc)

    P = np.zeros((n_states, n_actions, n_states))  # P[s, a, s']
    for s in range(n_states):
        if terminal[s]:
            P[s, :, s] = 1.0  # absorbing; dp ignores it, inverse RL's demos stay there
            continue
        for a in range(n_actions):
            P[s, a, destination(s, a)] += 1.0 - env.slip
            for side in PERPENDICULAR[a]:
                P[s, a, destination(s, side)] += env.slip / 2
    R = P @ state_reward  # R[s, a] = sum_s' P[s, a, s'] r(s')
    R[terminal] = 0.0
    start = (cells == "S").astype(np.float64)
    return TabularMDP(
        P=P,
        R=R,
        terminal=terminal,
        start=start,
        shape=(rows, cols),
        layout=tuple(env.layout),
        action_names=ACTION_NAMES,
        wall=wall,
        state_reward=state_reward,
    )


def build_frozen_lake(env: FrozenLakeEnv) -> TabularMDP:
    """FrozenLake-v1's dynamics, copied from Gymnasium's own table `env.unwrapped.P`."""
    import gymnasium as gym  # imported here: the grid builder does not need it

    gym_env = gym.make("FrozenLake-v1", map_name=env.map_name, is_slippery=env.is_slippery)
    inner: Any = gym_env.unwrapped
    table: dict[int, dict[int, list[tuple[float, int, float, bool]]]] = inner.P
    layout = tuple(b"".join(row).decode() for row in inner.desc)
    rows, cols = len(layout), len(layout[0])
    n_states, n_actions = rows * cols, len(table[0])
    cells = np.array([list(row) for row in layout]).reshape(-1)
    terminal = (cells == "H") | (cells == "G")
    P = np.zeros((n_states, n_actions, n_states))  # P[s, a, s']
    R = np.zeros((n_states, n_actions))  # R[s, a]
    for s in range(n_states):
        for a in range(n_actions):
            for prob, nxt, reward, _done in table[s][a]:
                P[s, a, nxt] += prob
                R[s, a] += prob * reward
    R[terminal] = 0.0  # Gymnasium's terminal self-loops carry no reward either
    gym_env.close()
    return TabularMDP(
        P=P,
        R=R,
        terminal=terminal,
        start=np.asarray(inner.initial_state_distrib, dtype=np.float64),
        shape=(rows, cols),
        layout=layout,
        action_names=ACTION_NAMES,
        wall=np.zeros(n_states, dtype=bool),
        state_reward=(cells == "G").astype(np.float64),
    )
