"""A pixel environment for DQN's convolutional Q-network: a grid world seen as a small image.

`GridWorldEnv` is an open n x n room (5 x 5 by default): the agent and a goal start on two
distinct random cells, the agent moves up, right, down or left (a move into the wall stays
put), and reaching the goal ends the episode with +1; every other step costs 0.01, so the
return, at most 1, also says how directly the goal was reached. Its state is four integers
(agent row and column, goal row and column).

`GridImage` is an observation wrapper that renders any such state as a C x H x W float32
array, one plane per object (agent, goal), with a 1 where the object is: the image an Atari
agent would see (Mnih et al. 2015), shrunk to a handful of pixels so a convolutional
Q-network learns it in seconds on a CPU. The goal moves every episode, so the network must
read positions from the picture, which convolutions (translation-equivariant) do well.

Importing this module registers the wrapped room with Gymnasium as `PixelGridWorld-v0`
(50-step time limit), so `gymnasium.make("PixelGridWorld-v0")` creates it like any other.
With `render_mode="rgb_array"`, `render()` draws the room for people (the `render` query's
animations): cells of at least `MIN_RENDER_WIDTH / size` pixels, the goal green, the agent a
dot, as `ml.tabular.render` draws the tabular grid worlds; observations stay the tiny planes.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import gymnasium as gym
import numpy as np

from ml.tabular.render import FREE, GOAL, draw_agent, draw_cells

PixelEnvId = Literal["PixelGridWorld-v0"]
PIXEL_ENV_IDS: tuple[str, ...] = get_args(PixelEnvId)

GOAL_REWARD = 1.0
STEP_COST = 0.01
MAX_EPISODE_STEPS = 50
MIN_RENDER_WIDTH = 160  # pixels: a rendered room is at least this wide
# Row and column change of each action: up, right, down, left.
MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int64)


class GridWorldEnv(gym.Env[np.ndarray, int]):
    """An open size x size room with a goal; state (agent_row, agent_col, goal_row, goal_col)."""

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, size: int = 5, render_mode: str | None = None) -> None:
        if size < 2:
            raise ValueError("the room needs at least 2 x 2 cells")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"the room renders as 'rgb_array', not {render_mode!r}")
        self.size = size
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0, size - 1, shape=(4,), dtype=np.int64)
        self.action_space = gym.spaces.Discrete(len(MOVES))  # type: ignore[assignment]
        self._agent = np.zeros(2, dtype=np.int64)
        self._goal = np.zeros(2, dtype=np.int64)

    def _state(self) -> np.ndarray:
        return np.concatenate([self._agent, self._goal])  # [4]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        cells = self.np_random.choice(self.size * self.size, size=2, replace=False)
        self._agent = np.array(divmod(int(cells[0]), self.size), dtype=np.int64)
        self._goal = np.array(divmod(int(cells[1]), self.size), dtype=np.int64)
        return self._state(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._agent = np.clip(self._agent + MOVES[int(action)], 0, self.size - 1)
        reached = bool((self._agent == self._goal).all())
        reward = GOAL_REWARD if reached else -STEP_COST
        return self._state(), reward, reached, False, {}

    def render(self) -> np.ndarray | None:
        """The room as pixels [H, W, 3] uint8 (`render_mode="rgb_array"`; None without)."""
        if self.render_mode != "rgb_array":
            return None
        cell = max(4, -(-MIN_RENDER_WIDTH // self.size))  # ceil: at least MIN_RENDER_WIDTH
        colours = np.full((self.size, self.size, 3), FREE, dtype=np.uint8)
        colours[self._goal[0], self._goal[1]] = GOAL
        return draw_agent(draw_cells(colours, cell), cell, int(self._agent[0]), int(self._agent[1]))


class GridImage(gym.ObservationWrapper[np.ndarray, int, np.ndarray]):
    """Renders a grid state (row, col pairs, one per object) as planes [C, H, W] float32."""

    def __init__(self, env: gym.Env[np.ndarray, int], size: int) -> None:
        super().__init__(env)
        self.size = size
        state_shape = env.observation_space.shape
        assert state_shape is not None and len(state_shape) == 1
        self.planes = state_shape[0] // 2  # one plane per object, two numbers per object
        shape = (self.planes, size, size)
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=shape, dtype=np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        image = np.zeros((self.planes, self.size, self.size), dtype=np.float32)  # [C, H, W]
        cells = np.asarray(observation, dtype=np.int64).reshape(self.planes, 2)
        image[np.arange(self.planes), cells[:, 0], cells[:, 1]] = 1.0
        return image


def make_pixel_grid_world(
    size: int = 5, render_mode: str | None = None
) -> gym.Env[np.ndarray, int]:
    """The room of `size` x `size` cells seen as a [2, size, size] image."""
    return GridImage(GridWorldEnv(size, render_mode), size)


if "PixelGridWorld-v0" not in gym.registry:
    gym.register(
        id="PixelGridWorld-v0",
        entry_point="ml.rl.pixels:make_pixel_grid_world",
        max_episode_steps=MAX_EPISODE_STEPS,
    )
