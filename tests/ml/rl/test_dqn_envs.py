"""DQN's environments: several stepped as one batch, the pixel grid world, the convolutional
Q-network, and the conv DQN learning the grid world from its images."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from ml.core.errors import ConfigError
from ml.core.hooks import NullHooks
from ml.rl.dqn import ConvQNetwork, DQNConfig, make_q_network, q_network_weight_uses, train
from ml.rl.pixels import GOAL_REWARD, STEP_COST, GridImage, GridWorldEnv
from ml.rl.vector import VectorEnv, evaluate, make_env, spaces_of


# -- several environments as one batch ---------------------------------------------------------
def test_vector_env_steps_each_environment_and_restarts_finished_ones() -> None:
    vector = VectorEnv("CartPole-v1", 3)
    singles = [gym.make("CartPole-v1") for _ in range(3)]
    first = vector.reset(seed=10)
    assert first.shape == (3, 4) and first.dtype == np.float32
    expected = np.stack([env.reset(seed=10 + i)[0] for i, env in enumerate(singles)])
    np.testing.assert_array_equal(first, expected)

    ended = 0
    for t in range(60):
        actions = np.array([0, 1, t % 2])  # environment 0 falls within a few dozen steps
        out = vector.step(actions)
        for i, env in enumerate(singles):
            next_obs, reward, terminated, truncated, _ = env.step(int(actions[i]))
            np.testing.assert_array_equal(out.next_observations[i], next_obs.astype(np.float32))
            assert (out.rewards[i], out.terminated[i], out.truncated[i]) == (
                reward, terminated, truncated,
            )  # fmt: skip
            if terminated or truncated:
                ended += 1
                # The real last observation, and a new episode's first to act on next.
                assert not np.array_equal(out.observations[i], out.next_observations[i])
                env.reset()
                env.unwrapped.state = vector.envs[i].unwrapped.state  # type: ignore[attr-defined]
            else:
                np.testing.assert_array_equal(out.observations[i], out.next_observations[i])
    assert ended >= 2
    vector.close()
    with pytest.raises(ValueError):
        VectorEnv("CartPole-v1", 0)


def test_dqn_environments_and_their_spaces() -> None:
    cartpole = spaces_of("CartPole-v1")
    assert (cartpole.observation_shape, cartpole.n_actions, cartpole.image) == ((4,), 2, False)
    grid = spaces_of("PixelGridWorld-v0")
    assert grid.observation_shape == (2, 5, 5) and grid.observation_dim == 50
    assert grid.n_actions == 4 and grid.max_episode_steps == 50 and grid.image
    with pytest.raises(ConfigError):
        make_env("Pendulum-v1")  # continuous actions


# -- the pixel grid world ----------------------------------------------------------------------
def test_grid_world_moves_rewards_and_renders() -> None:
    env = GridWorldEnv(size=4)
    state, _ = env.reset(seed=3)
    agent, goal = state[:2].copy(), state[2:].copy()
    assert not np.array_equal(agent, goal) and ((state >= 0) & (state < 4)).all()
    # Walk to the goal: rows first, then columns; every step but the last costs STEP_COST.
    total, done = 0.0, False
    while not done:
        d = goal - agent
        action = (2 if d[0] > 0 else 0) if d[0] != 0 else (1 if d[1] > 0 else 3)
        state, reward, done, truncated, _ = env.step(action)
        agent = state[:2]
        total += reward
        assert not truncated
    steps = int(np.abs(goal - env.reset(seed=3)[0][:2]).sum())
    assert math.isclose(total, GOAL_REWARD - STEP_COST * (steps - 1))
    # Walls: moving up from the top row stays put.
    env.reset(seed=0)
    env._agent = np.array([0, 2])
    assert env.step(0)[0][:2].tolist() == [0, 2]

    image = GridImage(GridWorldEnv(4), 4).observation(np.array([1, 2, 3, 0]))
    assert image.shape == (2, 4, 4) and image.dtype == np.float32 and image.sum() == 2.0
    assert image[0, 1, 2] == 1.0 and image[1, 3, 0] == 1.0


def test_pixel_grid_world_is_registered_with_gymnasium() -> None:
    env = gym.make("PixelGridWorld-v0")
    observation, _ = env.reset(seed=0)
    assert observation.shape == (2, 5, 5) and env.spec is not None
    assert env.spec.max_episode_steps == 50
    # A policy that never moves towards the goal runs into the time limit.
    returns = evaluate(lambda o: np.zeros(len(o), np.int64), "PixelGridWorld-v0", 3, seed=1)
    assert len(returns) == 3 and all(r == pytest.approx(-0.5) or r > 0.5 for r in returns)
    assert returns == evaluate(lambda o: np.zeros(len(o), np.int64), "PixelGridWorld-v0", 3, 1)


# -- the convolutional Q-network ---------------------------------------------------------------
@pytest.mark.parametrize("dueling", [False, True])
def test_conv_q_network_shapes(dueling: bool) -> None:
    config = DQNConfig(
        env="PixelGridWorld-v0", network="conv", conv_channels=[8, 4], hidden=[16], dueling=dueling
    )
    spaces = spaces_of(config.env)
    net = make_q_network(config, spaces.observation_dim, spaces.n_actions, spaces.observation_shape)
    assert isinstance(net, ConvQNetwork)
    images = torch.rand(7, 2, 5, 5)
    q = net(images)
    assert q.shape == (7, 4)
    torch.testing.assert_close(net(images.reshape(7, 50)), q)  # flat, as the buffer stores it
    assert net.torso(images).shape == (7, 4 * 5 * 5)  # "same" convolutions keep H x W
    params = sum(p.numel() for p in net.parameters())
    conv_params = (9 * 2 * 8 + 8) + (9 * 8 * 4 + 4)
    assert q_network_weight_uses(config, spaces) == params + conv_params * (25 - 1)
    with pytest.raises(ValueError):
        make_q_network(config, 50, 4)  # no image shape


@pytest.mark.slow
def test_conv_dqn_learns_the_pixel_grid_world() -> None:
    torch.set_num_threads(1)
    config = DQNConfig(
        env="PixelGridWorld-v0",
        network="conv",
        conv_channels=[16, 16],
        hidden=[64],
        total_steps=10_000,
        learning_starts=500,
        learning_rate=1e-3,
        train_frequency=4,
        gradient_steps=2,
        target_update_interval=250,
        exploration_fraction=0.2,
        exploration_final_eps=0.05,
        gamma=0.95,
        n_step=3,
        eval_interval=1_000,
        eval_episodes=20,
        target_return=0.97,  # about the best mean a shortest path gets on those 20 rooms
        buffer_size=10_000,
    )
    model = train(config, seed=0, hooks=NullHooks())
    assert model.shapes["observation_shape"] == [2, 5, 5]
    returns = np.array(model.evaluate_policy(episodes=50, seed=10_000))  # fresh rooms
    assert returns.mean() >= 0.9, returns
    assert (returns > 0).mean() >= 0.95  # the goal reached (a failure scores -0.5)
