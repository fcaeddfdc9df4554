"""The `render` query: one episode of a model's policy, shown as an animated GIF.

The episode is the first one `rollouts` plays with the same seed (`ml.rl.render` films it):
a Gymnasium environment drawn by the environment itself, a 2-D tabular world drawn cell by
cell. The JSON answer says what happened (actions, return, how it ended) and how the film is
made (frames, size, speed); the frames themselves ride on the answer as a private attribute,
never in the JSON, for the GIF renderer, which only sees the answer.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field, PrivateAttr

from ml.core.errors import QueryError
from ml.queries.base import GIF, REQUEST, Query, exposes
from ml.queries.rollouts import policy_of, world_of
from ml.rl.render import MAX_SIDE, Film, can_render, film, film_tabular, grid_cell

MAX_STEPS = 500
QUICK_STEPS = 200  # longer episodes are filmed on a worker
MAX_FPS = 50
PALETTE = 64  # colours of the GIF's one palette: flat drawings need few, shading some more
PALETTE_SAMPLES = 8  # frames, spread over the episode, the palette is chosen from


class RenderRequest(BaseModel):
    model_config = REQUEST

    seed: int = Field(
        0,
        ge=0,
        le=2**31 - 1,
        description="The episode starts from reset(seed) (Gymnasium) or is sampled with this "
        "seed (tabular): the first episode `rollouts` plays with it.",
    )
    max_steps: int = Field(
        200,
        ge=1,
        le=MAX_STEPS,
        description="Most actions: the episode is cut there (Gymnasium environments also end "
        "at their own time limit). One frame per state, so at most max_steps + 1 frames.",
    )
    fps: int = Field(15, ge=1, le=MAX_FPS, description="Frames per second of the animation.")
    max_width: int = Field(
        MAX_SIDE,
        ge=64,
        le=MAX_SIDE,
        description="Most pixels across a frame. Frames keep their aspect ratio and are never "
        "enlarged; long episodes get smaller frames, so a film stays within a fixed number "
        "of pixels.",
    )


class Frames:
    """An answer's frames [H, W, 3] uint8, compared by value, so two answers of the same
    episode compare equal (pydantic compares private attributes too)."""

    def __init__(self, frames: Sequence[np.ndarray] = ()) -> None:
        self.frames = list(frames)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frames) or len(other.frames) != len(self.frames):
            return False
        return all(np.array_equal(a, b) for a, b in zip(self.frames, other.frames, strict=True))

    __hash__ = None  # type: ignore[assignment]


class RenderResponse(BaseModel):
    world: str = Field(description="The Gymnasium environment, or the tabular world's kind.")
    seed: int
    fps: int
    frames: int = Field(description="Frames of the animation: one per state, length + 1.")
    width: int = Field(description="Pixels across a frame.")
    height: int = Field(description="Pixels down a frame, with the step counter under it.")
    length: int = Field(description="Actions taken.")
    actions: list[int] | list[list[float]] = Field(description="a_t of every step.")
    states: list[int] | None = Field(None, description="s_0 ... s_T (tabular).")
    episode_return: float | None = Field(
        None, description="Undiscounted return (Gymnasium; a tabular world's draws are not kept)."
    )
    terminated: bool = Field(description="The episode ended in a terminal state.")
    truncated: bool = Field(description="It was cut by a time limit or max_steps.")

    _frames: Frames = PrivateAttr(default_factory=Frames)


def render(model: Any, request: RenderRequest) -> RenderResponse:
    if exposes(type(model), "grid_shape"):
        world = str(model.metadata["config"]["env"].get("kind", "grid"))
        played = _tabular(model, request)
    else:
        world = str(model.env_id)
        if not can_render(world):
            raise QueryError(
                f"{world} draws no frames, so its episodes cannot be shown; ask for rollouts",
                field="model",
            )
        played = film(policy_of(model), world, request.seed, request.max_steps, request.max_width)
    height, width = played.frames[0].shape[:2]
    answer = RenderResponse(
        world=world,
        seed=request.seed,
        fps=request.fps,
        frames=len(played.frames),
        width=width,
        height=height,
        length=len(played.actions),
        actions=played.actions.tolist(),
        states=None if played.states is None else played.states.tolist(),
        episode_return=None if played.rewards is None else float(played.rewards.sum()),
        terminated=played.terminated,
        truncated=played.truncated,
    )
    answer._frames = Frames(played.frames)
    return answer


def _tabular(model: Any, request: RenderRequest) -> Film:
    """The film of a tabular model, whose world must be a 2-D grid that fits a frame."""
    shape = tuple(model.grid_shape)
    if len(shape) != 2:
        raise QueryError(
            f"this model's world is no 2-D grid (its states lay out as {list(shape)}), so it "
            "has no picture; ask for rollouts",
            field="model",
        )
    if grid_cell(shape, request.max_steps, request.max_width) < 1:
        raise QueryError(
            f"a grid of {shape[0]} x {shape[1]} cells does not fit a frame of at most "
            f"{request.max_width} x {MAX_SIDE} pixels for {request.max_steps} steps; ask for "
            "fewer max_steps",
            field="model",
        )
    mdp = world_of(model, "be rendered")
    return film_tabular(mdp, model.policy, request.seed, request.max_steps, request.max_width)


def gif(answer: RenderResponse) -> bytes:
    """The answer's frames as a looping GIF at its fps."""
    frames = answer._frames.frames
    if not frames:
        raise QueryError(
            "this answer keeps no frames (it was read back from JSON): ask the query again",
            field="format",
        )
    return animated_gif(frames, answer.fps)


def animated_gif(frames: Sequence[np.ndarray], fps: int) -> bytes:
    """A looping GIF of frames [H, W, 3] uint8. One palette for all of them (median cut, at
    most `PALETTE` colours, from a few frames spread over the episode) and no dithering: flat
    drawings keep flat colours, the file needs one colour table, and the encoder stores only
    the pixels that changed from one frame to the next."""
    picks = np.linspace(0, len(frames) - 1, min(len(frames), PALETTE_SAMPLES)).astype(int)
    sample = Image.fromarray(np.concatenate([frames[i] for i in picks], axis=0))
    palette = sample.quantize(PALETTE, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    images = [
        Image.fromarray(frame).quantize(palette=palette, dither=Image.Dither.NONE)
        for frame in frames
    ]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=round(1000 / fps),  # milliseconds; GIF keeps hundredths of a second
        loop=0,
    )
    return buffer.getvalue()


RENDER = Query(
    name="render",
    summary="One episode of the model's policy, as an animated GIF",
    description="Plays one episode of the model's policy (greedy; an actor without noise; a "
    "tabular model's policy sampled in its world: the first episode `rollouts` plays with "
    "the same seed) and answers how it went: actions, return, how it ended, and the "
    "animation's frames, size and speed. As GIF (`?format=gif`): the episode, a frame per "
    f"state with its step under it, at most {MAX_STEPS + 1} frames of at most {MAX_SIDE} "
    "pixels a side. Gymnasium environments that draw themselves (classic control, the pixel "
    "grid world) and tabular worlds on a 2-D grid answer; others, and models of an uploaded "
    f"MDP, are refused (422). Episodes of more than {QUICK_STEPS} steps are filmed on a "
    "worker (202, then the result).",
    request=RenderRequest,
    response=RenderResponse,
    needs=(("q_function", "env_id"), ("act", "env_id"), ("policy", "grid_shape")),
    run=render,
    renderers={GIF: gif},
    heavy=lambda request: request.max_steps > QUICK_STEPS,
    examples=({"seed": 0}, {"seed": 3, "max_steps": 100, "fps": 25, "max_width": 240}),
)
