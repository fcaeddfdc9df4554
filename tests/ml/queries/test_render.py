"""The `render` query: one episode as JSON and as an animated GIF whose frames, size and speed
are the ones the JSON states, for a Gymnasium environment, the pixel grid world and a tabular
grid; and the models and requests it refuses. The Gymnasium models are built directly with a
hand-written Q-network (no training), so the episodes are known and the tests fast."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence
from torch import nn

import ml
from ml.core.errors import QueryError
from ml.data import Dataset
from ml.queries.base import GIF, JSON
from ml.queries.render import RENDER, RenderResponse
from ml.queries.rollouts import RolloutsRequest, rollouts
from ml.rl.dqn import DQNModel
from ml.rl.render import MAX_PIXELS, MAX_SIDE, grid_cell
from ml.rl.td3 import TD3Model
from ml.tabular.render import AGENT, GOAL

SIZE = 5  # the pixel room's side


class Push(nn.Module):
    """Q of CartPole's two actions preferring `action` always: the pole falls within a few
    dozen steps."""

    def __init__(self, action: int) -> None:
        super().__init__()
        self.action = action

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = torch.zeros(len(x), 2)
        q[:, self.action] = 1.0
        return q


class RoomQ(nn.Module):
    """Q of the pixel room: minus the Manhattan distance to the goal after each move."""

    moves = torch.tensor([[-1, 0], [0, 1], [1, 0], [0, -1]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cells = x.reshape(-1, 2, SIZE * SIZE).argmax(dim=2)  # [B, 2]: agent, goal
        agent = torch.stack([cells[:, 0] // SIZE, cells[:, 0] % SIZE], dim=1)
        goal = torch.stack([cells[:, 1] // SIZE, cells[:, 1] % SIZE], dim=1)
        after = (agent[:, None] + self.moves[None]).clamp(0, SIZE - 1)  # [B, 4, 2]
        return -(after - goal[:, None]).abs().sum(dim=2).float()


def dqn(env_id: str, q_network: nn.Module, **shapes: Any) -> DQNModel:
    return DQNModel({"kind": "dqn", "shapes": {"env_id": env_id, **shapes}}, q_network)


def cartpole(action: int = 0) -> DQNModel:
    return dqn("CartPole-v1", Push(action), observation_dim=4, n_actions=2)


def room() -> DQNModel:
    shape = {"observation_dim": 2 * SIZE * SIZE, "observation_shape": [2, SIZE, SIZE]}
    return dqn("PixelGridWorld-v0", RoomQ(), n_actions=4, **shape)


@pytest.fixture(scope="module")
def grid() -> Any:
    return ml.train("value_iteration", {"env": {"layout": ["S..", "..G"], "slip": 0.0}})


def gif_of(answer: RenderResponse) -> Image.Image:
    image = Image.open(io.BytesIO(RENDER.render(answer, GIF)))
    assert image.format == "GIF" and image.info["loop"] == 0
    return image


def assert_film_matches(answer: RenderResponse) -> list[np.ndarray]:
    """The GIF decodes, animated, with the frames, size and speed the JSON says; its frames
    [H, W, 3] uint8."""
    image = gif_of(answer)
    assert image.size == (answer.width, answer.height)
    assert image.info["duration"] == pytest.approx(1000 / answer.fps, abs=10)
    assert answer.width <= MAX_SIDE and answer.height <= MAX_SIDE
    frames = [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)]
    assert len(frames) == answer.frames == answer.length + 1 > 1
    return frames


def test_a_cartpole_episode_is_the_first_rollout_and_its_gif() -> None:
    model = cartpole()
    answer = RENDER.answer(model, {"seed": 7, "fps": 20})
    played = rollouts(model, RolloutsRequest(episodes=1, seed=7))
    assert answer.actions == played.actions and answer.terminated and not answer.truncated
    assert played.returns is not None and answer.episode_return == played.returns[0]
    assert answer.world == "CartPole-v1" and answer.states is None
    assert answer.width == MAX_SIDE  # 600 pixels shrunk
    assert_film_matches(answer)


def test_max_steps_cuts_the_episode_and_max_width_the_frames() -> None:
    answer = RENDER.answer(cartpole(), {"max_steps": 3, "max_width": 100})
    assert answer.length == 3 and answer.truncated and not answer.terminated
    assert answer.width == 100
    assert_film_matches(answer)


def test_continuous_actions_are_filmed() -> None:
    shapes = {"env_id": "Pendulum-v1", "observation_dim": 3, "action_dim": 1}
    shapes |= {"action_low": [-2.0], "action_high": [2.0]}
    actor = nn.Sequential(nn.Linear(3, 1), nn.Tanh())
    model = TD3Model({"kind": "td3", "shapes": shapes}, actor, None)  # type: ignore[arg-type]
    answer = RENDER.answer(model, {"max_steps": 4})
    assert answer.length == 4 and all(len(a) == 1 for a in answer.actions)  # type: ignore[arg-type]
    assert_film_matches(answer)


def test_the_pixel_room_is_drawn_to_the_goal() -> None:
    answer = RENDER.answer(room(), {"seed": 3})
    assert answer.terminated and answer.episode_return is not None
    assert answer.episode_return == pytest.approx(1.0 - 0.01 * (answer.length - 1))
    assert answer.width >= 160
    last = assert_film_matches(answer)[-1]  # the agent's dot on the goal cell
    assert (last == AGENT).all(axis=2).any() and (last == GOAL).all(axis=2).any()


def test_a_tabular_episode_is_drawn_state_by_state(grid: Any) -> None:
    answer = RENDER.answer(grid, {"seed": 0, "fps": 4})
    played = rollouts(grid, RolloutsRequest(episodes=1, seed=0))
    assert answer.states == [*played.states, 5] and answer.actions == played.actions  # type: ignore[misc]
    assert answer.world == "grid" and answer.episode_return is None and answer.terminated
    first = assert_film_matches(answer)[0]
    cell = grid_cell((2, 3), 200, MAX_SIDE)
    assert answer.width == 3 * cell
    assert tuple(first[cell // 2, cell // 2]) == AGENT  # the dot in the start cell
    assert answer == RENDER.answer(grid, {"seed": 0, "fps": 4})  # frames compared too
    assert RENDER.render(answer, GIF) == RENDER.render(RENDER.answer(grid, {"fps": 4}), GIF)


def test_the_json_has_no_frames_and_a_json_answer_has_no_gif(grid: Any) -> None:
    answer = RENDER.answer(grid, {})
    document = json.loads(RENDER.render(answer, JSON))
    assert document["frames"] == answer.frames and "_frames" not in document
    with pytest.raises(QueryError) as error:
        RENDER.render(RenderResponse.model_validate(document), GIF)
    assert error.value.field == "format"


def test_frames_shrink_so_a_film_stays_within_its_pixels() -> None:
    assert grid_cell((2, 3), 200, MAX_SIDE) == 48
    for steps in (1, 200, 500):
        cell = grid_cell((100, 100), steps, MAX_SIDE)
        assert cell >= 1 and (100 * cell) ** 2 * (steps + 1) <= MAX_PIXELS
    assert grid_cell((1024, 1024), 1, MAX_SIDE) == 0


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"fps": 51}, "fps"),
        ({"fps": 0}, "fps"),
        ({"max_steps": 501}, "max_steps"),
        ({"max_width": 1000}, "max_width"),
        ({"frames": 3}, "frames"),
    ],
)
def test_requests_out_of_bounds_name_their_field(
    grid: Any, request_: dict[str, Any], field: str
) -> None:
    with pytest.raises(QueryError) as error:
        RENDER.answer(grid, request_)
    assert error.value.field == field


def test_worlds_without_a_picture_are_refused() -> None:
    taxi = ml.train("value_iteration", {"env": {"kind": "taxi"}})
    with pytest.raises(QueryError, match="no 2-D grid") as error:
        RENDER.answer(taxi, {})
    assert error.value.field == "model"
    car = dqn("CarOnHill-v0", Push(0), observation_dim=2, n_actions=2)
    with pytest.raises(QueryError, match="draws no frames") as error:
        RENDER.answer(car, {})
    assert error.value.field == "model"


def test_a_model_of_an_uploaded_mdp_is_refused() -> None:
    arrays = {"P": np.eye(4)[:, None, :], "R": np.zeros(4)}
    env = {"kind": "mdp", "dataset": {"kind": "uploaded", "id": "d"}}
    datasets = {"d": Dataset("mdp", arrays)}
    model = ml.train("value_iteration", {"env": env, "discount": 0.9}, datasets=datasets)
    with pytest.raises(QueryError) as error:
        RENDER.answer(model, {})
    assert error.value.field == "model"
