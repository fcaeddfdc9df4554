"""One episode of a trained policy, filmed: the frames of the `render` query's animation.

The episode is the one the `rollouts` query plays first with the same seed (`ml.rl.rollouts`):
a Gymnasium environment from `reset(seed)`, its policy called on a batch of one observation;
a tabular world sampled by a generator seeded with `seed`. A Gymnasium environment draws its
own frames (`render_mode="rgb_array"`: pygame, off-screen), shrunk to fit; a 2-D tabular
world's frames are drawn here with `ml.tabular.render`, one per state visited.

Memory is bounded before the episode starts: a film has at most `max_steps + 1` frames and
each frame is sized so that together they hold at most `MAX_PIXELS` pixels (and at most
`MAX_SIDE` a side), however the episode goes. Under every frame a strip reads its step,
"t/T": what a viewer wants to know, and what keeps consecutive frames distinct, since a GIF
encoder merges identical frames (a pendulum balanced at the top) into one.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ml.rl.envs import PolicyFn, checked_actions
from ml.rl.rollouts import env_of, policy_spaces, tabular_episode
from ml.tabular.mdp import TabularMDP
from ml.tabular.render import draw_agent, draw_cells, world_colours

# Frames are drawn off-screen; without a display SDL would look for one and complain on stderr.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

MAX_SIDE = 320  # pixels: the most a frame measures across or down
MAX_PIXELS = 25_000_000  # all frames of a film together: 75 MB as RGB
MAX_CELL = 48  # pixels a side of a tabular grid's cell, for small grids

# The step counter: digits (and "/") 3 x 5 pixels, enlarged `INK_SCALE` times.
GLYPHS = {
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "001", "001", "001"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
    "/": ("001", "001", "010", "100", "100"),
}
INK_SCALE = 2
CAPTION = 7 * INK_SCALE  # rows of the strip: a glyph's 5 and a row of margin above and below
INK = (33, 33, 33)
PAPER = (240, 240, 240)


@dataclass(frozen=True, eq=False)
class Film:
    """One episode and what it looked like."""

    frames: list[np.ndarray]  # frames[t]: s_t as [H, W, 3] uint8 with its caption; t = 0 ... T
    actions: np.ndarray  # [T] ints, or [T, action_dim] floats
    rewards: np.ndarray | None  # [T] r_t where the world pays them (Gymnasium)
    states: np.ndarray | None  # [T + 1] s_t of a tabular world
    terminated: bool  # the episode ended (a terminal state)
    truncated: bool  # it was cut: the environment's time limit, or `max_steps`


def can_render(env_id: str) -> bool:
    """Whether the environment draws frames ("rgb_array"); car on the hill does not."""
    env = env_of(env_id)
    try:
        return "rgb_array" in env.metadata.get("render_modes", ())
    finally:
        env.close()


def film(policy_fn: PolicyFn, env_id: str, seed: int, max_steps: int, max_width: int) -> Film:
    """The episode of `policy_fn` from `reset(seed=seed)`, to its end, the environment's time
    limit or `max_steps` actions; frames at most `max_width` pixels wide (never enlarged).
    The environment must render (`can_render`)."""
    spaces = policy_spaces(env_id)
    env = env_of(env_id, render_mode="rgb_array")
    try:
        obs, _ = env.reset(seed=seed)
        first = _pixels(env.render())
        height, width = first.shape[:2]
        scale = _scale(width, height, max_steps, max_width)
        size = (max(1, int(width * scale)), max(1, int(height * scale)))
        frames = [_captioned(_shrunk(first, size))]
        actions: list[np.ndarray] = []
        rewards: list[float] = []
        terminated = truncated = False
        while not (terminated or truncated) and len(actions) < max_steps:
            batch = np.asarray(obs, dtype=np.float32)[None]  # [1, ...]
            action = checked_actions(policy_fn, batch, spaces)[0]
            env_action = int(action) if spaces.discrete else action
            obs, reward, terminated, truncated, _ = env.step(env_action)
            actions.append(action)
            rewards.append(float(reward))
            frames.append(_captioned(_shrunk(_pixels(env.render()), size)))
    finally:
        env.close()
    _number(frames)
    return Film(
        frames=frames,
        actions=np.asarray(actions, dtype=np.int64 if spaces.discrete else np.float32),
        rewards=np.asarray(rewards, dtype=np.float32),
        states=None,
        terminated=bool(terminated),
        truncated=not terminated,
    )


def grid_cell(shape: tuple[int, ...], max_steps: int, max_width: int) -> int:
    """Pixels a side of a cell of a 2-D grid of `shape` (rows, cols) in a film of up to
    `max_steps` actions: `MAX_CELL` for small grids, less for large ones; 0 when the grid
    does not fit even at one pixel a cell."""
    rows, cols = shape
    scale = _scale(cols * MAX_CELL, rows * MAX_CELL, max_steps, max_width)
    return int(MAX_CELL * scale)


def film_tabular(
    mdp: TabularMDP, policy: np.ndarray, seed: int, max_steps: int, max_width: int
) -> Film:
    """The episode of `policy[s]` in a 2-D world, sampled from a generator seeded with
    `seed`: to a terminal state or `max_steps` actions. The grid must fit (`grid_cell`)."""
    cell = grid_cell(mdp.shape, max_steps, max_width)
    assert len(mdp.shape) == 2 and cell >= 1, "a 2-D grid that fits the frame"
    states, actions = tabular_episode(mdp, policy, np.random.default_rng(seed), max_steps)
    room = draw_cells(world_colours(mdp), cell)
    cols = mdp.shape[1]
    frames = [_captioned(draw_agent(room, cell, *divmod(s, cols))) for s in states]
    _number(frames)
    terminated = bool(mdp.terminal[states[-1]])
    return Film(
        frames=frames,
        actions=np.asarray(actions, dtype=np.int64),
        rewards=None,
        states=np.asarray(states, dtype=np.int64),
        terminated=terminated,
        truncated=not terminated,
    )


def _scale(width: int, height: int, max_steps: int, max_width: int) -> float:
    """How much a picture of width x height pixels shrinks (at most 1) to fit `max_width`
    across, `MAX_SIDE` down, and its share of `MAX_PIXELS` among max_steps + 1 frames
    (the captions' share set aside)."""
    pixels = MAX_PIXELS // (max_steps + 1) - CAPTION * max_width
    return min(
        1.0, max_width / width, (MAX_SIDE - CAPTION) / height, math.sqrt(pixels / (width * height))
    )


def _pixels(frame: object) -> np.ndarray:
    """An environment's `render()` as [H, W, 3] uint8."""
    assert isinstance(frame, np.ndarray) and frame.ndim == 3, "an rgb_array frame"
    return np.ascontiguousarray(frame[:, :, :3], dtype=np.uint8)


def _shrunk(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`picture` at `size` (width, height), each new pixel the mean of those it covers (a box
    filter: sharp, and faster than Lanczos by four)."""
    if picture.shape[1::-1] == size:
        return picture
    return np.asarray(Image.fromarray(picture).resize(size, Image.Resampling.BOX))


def _captioned(picture: np.ndarray) -> np.ndarray:
    """`picture` with a blank caption strip below it, for `_number` to write in."""
    height, width = picture.shape[:2]
    frame = np.empty((height + CAPTION, width, 3), dtype=np.uint8)
    frame[:height] = picture
    frame[height:] = PAPER
    return frame


def _number(frames: list[np.ndarray]) -> None:
    """Writes "t/T" into each frame's caption strip (in place): its step of the episode's T."""
    last = len(frames) - 1
    for t, frame in enumerate(frames):
        _write(frame[-CAPTION:], f"{t}/{last}")


def _write(strip: np.ndarray, text: str) -> None:
    """`text` (digits and "/") in `strip` [CAPTION, W, 3], left-aligned, cut at its right
    edge."""
    s = INK_SCALE
    x = 2 * s
    for char in text:
        glyph = _GLYPH_MASKS[char]  # [5 s, 3 s] bool
        right = min(x + glyph.shape[1], strip.shape[1])
        if right <= x:
            return
        strip[s : s + glyph.shape[0], x:right][glyph[:, : right - x]] = INK
        x += glyph.shape[1] + s


_GLYPH_MASKS = {
    char: np.array([[bit == "1" for bit in row] for row in rows])
    .repeat(INK_SCALE, 0)
    .repeat(INK_SCALE, 1)
    for char, rows in GLYPHS.items()
}
