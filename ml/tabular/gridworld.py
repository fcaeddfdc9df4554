"""Grid worlds drawn as text: the default world of the dynamic-programming and inverse-RL
algorithms.

A layout such as `["S..#", "..#G"]` (S start, . free, # wall, G goal, H hazard/pit), in the
style of Russell & Norvig's 4x3 world (AIMA, Section 17.1): the intended move succeeds with
probability 1 - slip, otherwise the agent moves in one of the two perpendicular directions,
split equally; a move into a wall or off the grid stays in place. Teleport cells send the
agent elsewhere whatever it does, with a reward, like Sutton & Barto's A/B example (Example
3.5). An open `size` room (no layout) has its start top-left and its goal bottom-right.

States are cells numbered `row * cols + col`; walls are states too (unreachable, never
terminal) so that this numbering holds. Actions follow Gymnasium's FrozenLake order: 0 left,
1 down, 2 right, 3 up.

Rewards are rewards for *entering* a cell: `goal_reward` on entering a goal, `hazard_reward`
on entering a hazard, `step_reward` on entering any other cell, `bump_reward` (by default the
step reward) on staying put after bumping into a wall or the edge, and a teleport's own
reward on leaving a teleport cell. Goals and hazards are terminal: their value is 0 and
nothing follows them. The builder is vectorized, so a 1000 x 1000 grid builds in a second.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ml.tabular.mdp import TabularMDP, from_triplets

ACTION_NAMES = ("left", "down", "right", "up")
# (d_row, d_col) of each action, in ACTION_NAMES order.
MOVES = np.array([[0, -1], [1, 0], [0, 1], [-1, 0]])
# The two directions perpendicular to each action: where a slip takes the agent.
PERPENDICULAR = {0: (1, 3), 1: (0, 2), 2: (1, 3), 3: (0, 2)}

CELLS = {"S": "start", ".": "free", "#": "wall", "G": "goal", "H": "hazard"}
MAX_SIDE = 1024
# Sparse P holds about 3 successors per state-action: 10^6 cells is 12 million entries
# (about 150 MB) and a value-iteration sweep of about 10 ms.
MAX_CELLS = 1 << 20

DEFAULT_LAYOUT = ["...G", ".#.H", "S..."]  # Russell & Norvig's 4x3 world (AIMA Fig. 17.1)


class Teleport(BaseModel):
    """Any action in `cell` moves the agent to `to` and pays `reward` (S&B Example 3.5)."""

    model_config = ConfigDict(extra="forbid")

    cell: tuple[int, int] = Field(description="[row, col] of the teleport cell.")
    to: tuple[int, int] = Field(description="[row, col] where every action there leads.")
    reward: float = Field(0.0, ge=-1000.0, le=1000.0, description="Reward for the jump.")


class GridEnv(BaseModel):
    """A grid world drawn as text: S start, . free, # wall, G goal, H hazard (a pit)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["grid"] = "grid"
    layout: list[str] | None = Field(
        None,
        min_length=1,
        max_length=MAX_SIDE,
        description="Rows of the map, all the same length: S start (none: every free cell "
        "may start; several: one of them, uniformly), . free, # wall, G goal (terminal), H "
        f"hazard (terminal). At most {MAX_SIDE} rows and columns and {MAX_CELLS} cells. "
        "Without a layout or a size: Russell & Norvig's 4x3 world.",
    )
    size: tuple[int, int] | None = Field(
        None,
        description="Instead of a layout: an open [rows, cols] room with the start top-left "
        "and the goal bottom-right (for large grids).",
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
    bump_reward: float | None = Field(
        default=None,
        ge=-1000.0,
        le=1000.0,
        description="Reward for bumping into a wall or the edge (staying put); null: the "
        "step reward.",
    )
    slip: float = Field(
        default=0.2,
        ge=0.0,
        lt=1.0,
        description="Probability of moving in one of the two perpendicular directions "
        "instead of the intended one (split equally).",
    )
    teleports: list[Teleport] = Field(
        default_factory=list,
        max_length=64,
        description="Cells where every action jumps elsewhere with a reward (Sutton & "
        "Barto's A/B example).",
    )

    @field_validator("layout")
    @classmethod
    def _check_layout(cls, layout: list[str] | None) -> list[str] | None:
        if layout is not None:
            check_layout(layout)
        return layout

    @model_validator(mode="after")
    def _check_world(self) -> GridEnv:
        if self.size is not None:
            if self.layout is not None:
                raise ValueError("give either a layout or a size, not both")
            rows, cols = self.size
            if not (2 <= rows <= MAX_SIDE and 2 <= cols <= MAX_SIDE) or rows * cols > MAX_CELLS:
                raise ValueError(
                    f"size is 2..{MAX_SIDE} rows and columns and at most {MAX_CELLS} cells, "
                    f"got {rows}x{cols}"
                )
        rows, cols = self.shape
        cells = (
            self.cells() if self.teleports else None
        )  # a 10^6-cell room is not built for nothing
        for i, jump in enumerate(self.teleports):
            for name, (r, c) in (("cell", jump.cell), ("to", jump.to)):
                if not (0 <= r < rows and 0 <= c < cols):
                    raise ValueError(f"teleports[{i}].{name} [{r}, {c}] is off the grid")
                assert cells is not None
                if cells[r, c] in "#GH":
                    kind = CELLS[str(cells[r, c])]
                    raise ValueError(f"teleports[{i}].{name} [{r}, {c}] is a {kind} cell")
        return self

    @property
    def shape(self) -> tuple[int, int]:
        if self.size is not None:
            return self.size
        lines = self.rows_text()
        return len(lines), len(lines[0])

    def cells(self) -> np.ndarray:
        """The map as a [rows, cols] array of one-character strings."""
        if self.size is None:
            return np.array([list(row) for row in self.rows_text()])
        cells = np.full(self.size, ".")
        cells[0, 0], cells[-1, -1] = "S", "G"
        return cells

    def rows_text(self) -> list[str]:
        """The map, one string per row (generated for a `size` room)."""
        if self.size is not None:
            return ["".join(row) for row in self.cells()]
        return list(DEFAULT_LAYOUT) if self.layout is None else self.layout


def check_layout(layout: list[str]) -> None:
    """Raise ValueError (a pydantic validation error inside a config) if the map is unusable."""
    if not layout:
        raise ValueError("the layout needs at least one row")
    cols = len(layout[0])
    if cols == 0:
        raise ValueError("layout rows must not be empty")
    if len(layout) > MAX_SIDE or cols > MAX_SIDE:
        raise ValueError(
            f"the grid is at most {MAX_SIDE} rows and {MAX_SIDE} columns, got {len(layout)}x{cols}"
        )
    if len(layout) * cols > MAX_CELLS:
        raise ValueError(
            f"the grid has at most {MAX_CELLS} cells, got {len(layout)}x{cols} = "
            f"{len(layout) * cols}"
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
    if all(set(row) <= {"#"} for row in layout):
        raise ValueError("the layout has no cell an agent can be in")


def n_cells(env: GridEnv) -> int:
    """States of the MDP `build_grid(env)` makes (one per cell), without building it."""
    rows, cols = env.shape
    return rows * cols


def build_grid(env: GridEnv) -> TabularMDP:
    """Transition and reward arrays of a text grid world (see the module docstring)."""
    rows, cols = env.shape
    n_states, n_actions = rows * cols, len(ACTION_NAMES)
    cells = env.cells().reshape(-1)  # cells[s]
    wall = cells == "#"
    terminal = (cells == "G") | (cells == "H")
    state_reward = np.full(n_states, env.step_reward)  # reward for entering s
    state_reward[cells == "G"] = env.goal_reward
    state_reward[cells == "H"] = env.hazard_reward
    state_reward[wall] = 0.0
    bump = env.step_reward if env.bump_reward is None else env.bump_reward

    states = np.arange(n_states)
    row, col = np.divmod(states, cols)
    moving = ~(terminal | wall)  # states whose actions move the agent
    for jump in env.teleports:
        moving[jump.cell[0] * cols + jump.cell[1]] = False

    def destination(a: int) -> tuple[np.ndarray, np.ndarray]:
        """s' [S] of moving in direction a from every state, and bumped [S]."""
        r, c = row + MOVES[a, 0], col + MOVES[a, 1]
        inside = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
        target = np.where(inside, r * cols + c, states)
        bumped = ~inside | wall[target]
        return np.where(bumped, states, target), bumped

    moves = [destination(a) for a in range(n_actions)]
    entries: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # (row, s', p, r)
    for a in range(n_actions):
        for direction, p in (
            (a, 1.0 - env.slip),
            *((side, env.slip / 2) for side in PERPENDICULAR[a]),
        ):
            if p == 0.0:
                continue
            target, bumped = moves[direction]
            s = states[moving]
            reward = np.where(bumped[moving], bump, state_reward[target[moving]])
            entries.append((s * n_actions + a, target[moving], np.full(len(s), p), reward))
    stuck = states[~moving & (terminal | wall)]  # absorbing; DP pins their value at 0
    for a in range(n_actions):
        entries.append((stuck * n_actions + a, stuck, np.ones(len(stuck)), np.zeros(len(stuck))))
    for jump in env.teleports:
        s = jump.cell[0] * cols + jump.cell[1]
        to = jump.to[0] * cols + jump.to[1]
        flat = s * n_actions + np.arange(n_actions)
        entries.append(
            (flat, np.full(n_actions, to), np.ones(n_actions), np.full(n_actions, jump.reward))
        )

    flat_rows, targets, probabilities, rewards = (
        np.concatenate(x) for x in zip(*entries, strict=True)
    )
    P = from_triplets(flat_rows, targets, probabilities, n_states, n_actions)
    R = np.bincount(flat_rows, weights=probabilities * rewards, minlength=n_states * n_actions)
    R = R.reshape(n_states, n_actions)  # R[s, a] = sum_s' P(s'|s, a) r(s, a, s')
    starts = cells == "S"
    if not starts.any():
        starts = ~(terminal | wall)
    return TabularMDP(
        transitions=P,
        R=R,
        terminal=terminal,
        start=starts / starts.sum(),
        shape=(rows, cols),
        layout=tuple(env.rows_text()) if n_states <= 65_536 else None,
        action_names=ACTION_NAMES,
        wall=wall,
        state_reward=state_reward,
    )
