"""Pictures of a 2-D grid world with numpy: one colour per cell, enlarged to `cell` pixels a
side, thin lines between cells, and the agent as a dot.

The `render` query draws every step of a tabular episode with these, and the pixel grid world
(`ml.rl.pixels`) draws its room with them, so both kinds of grid look alike. Plain array
arithmetic rather than matplotlib: a frame is a few `repeat`s and a mask, fast enough for
hundreds of frames per request.
"""

from __future__ import annotations

import numpy as np

from ml.tabular.mdp import TabularMDP

RGB = tuple[int, int, int]
FREE: RGB = (255, 255, 255)
WALL: RGB = (128, 128, 128)
GOAL: RGB = (102, 187, 106)  # terminal cells that pay (state reward > 0)
HAZARD: RGB = (229, 115, 115)  # other terminal cells (pits, holes)
CLIFF: RGB = (255, 205, 210)  # a map's cliff: not terminal, but sends the agent back
START: RGB = (187, 222, 251)
LINE: RGB = (210, 210, 210)
AGENT: RGB = (21, 101, 192)
LINES_FROM = 6  # pixels per cell from which lines are drawn between cells
DOT = 0.32  # the agent's radius, as a fraction of a cell


def world_colours(mdp: TabularMDP) -> np.ndarray:
    """colours[row, col, 3] uint8 of a 2-D world's cells: walls grey, terminal cells green
    for goals (a map's G, or where entering pays) and red otherwise (a map's H), a map's start
    blue and cliff pale red."""
    rows, cols = mdp.shape
    colours = np.empty((rows * cols, 3), dtype=np.uint8)  # colours[s, rgb]
    colours[:] = FREE
    goal = mdp.state_reward > 0  # goal[s]
    if mdp.layout is not None:
        letters = np.array([list(row) for row in mdp.layout]).reshape(-1)  # letters[s]
        colours[letters == "S"] = START
        colours[letters == "C"] = CLIFF
        # CliffWalking's goal pays nothing on entry (its rewards are per step): the map says.
        goal = (letters == "G") | (goal & (letters != "H"))
    colours[mdp.wall] = WALL
    colours[mdp.terminal & goal] = GOAL
    colours[mdp.terminal & ~goal] = HAZARD
    return colours.reshape(rows, cols, 3)


def draw_cells(colours: np.ndarray, cell: int) -> np.ndarray:
    """A picture [rows * cell, cols * cell, 3] uint8 of colours[row, col, 3]; from
    `LINES_FROM` pixels a cell, a line along each cell's top and left edge and the picture's
    bottom and right edge, so cells of one colour stay countable."""
    picture = np.repeat(np.repeat(colours, cell, axis=0), cell, axis=1)
    if cell >= LINES_FROM:
        picture[::cell, :] = LINE
        picture[:, ::cell] = LINE
        picture[-1, :] = LINE
        picture[:, -1] = LINE
    return picture


def draw_agent(picture: np.ndarray, cell: int, row: int, col: int) -> np.ndarray:
    """A copy of `picture` with the agent as a dot in cell (row, col) (the whole cell when
    cells are too small for a round dot)."""
    framed = picture.copy()
    square = framed[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell]
    square[_disc(cell)] = AGENT
    return framed


def _disc(cell: int) -> np.ndarray:
    """mask[y, x] of a disc centred in a cell of `cell` x `cell` pixels."""
    if cell < 4:
        return np.ones((cell, cell), dtype=bool)
    y, x = np.mgrid[:cell, :cell]
    centre = (cell - 1) / 2
    return (y - centre) ** 2 + (x - centre) ** 2 <= (DOT * cell) ** 2
