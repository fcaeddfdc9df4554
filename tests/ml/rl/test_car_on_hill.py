"""Car on the hill (`ml.rl.car_on_hill`): Ernst et al. 2005's physics, rewards and terminal
states, the Gymnasium environment, and scoring a policy on the paper's grid."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from ml.rl import car_on_hill as coh
from ml.rl.envs import DISCRETE_ENV_IDS, env_spaces, evaluate, make_env


def energy(p: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Kinetic plus potential energy of the car (m = 1): 1/2 s^2 (1 + Hill'(p)^2) + g Hill(p),
    the Lagrangian's energy whose equation of motion is the paper's."""
    slope = np.where(p < 0, 2 * p + 1, (1 + 5 * p**2) ** -1.5)
    return 0.5 * s**2 * (1 + slope**2) + coh.GRAVITY * coh.hill(p)


def test_the_hill() -> None:
    # A valley at p = -0.5 (Hill = -1/4), joined smoothly to the right-hand hill at p = 0.
    assert coh.hill(np.array(-0.5)) == pytest.approx(-0.25)
    assert coh.hill(np.array([-1e-9, 0.0, 1e-9])) == pytest.approx([0.0, 0.0, 0.0], abs=1e-8)
    assert coh.hill(np.array(1.0)) == pytest.approx(1 / np.sqrt(6))
    p = np.linspace(-1, 1, 2001)
    assert p[np.argmin(coh.hill(p))] == pytest.approx(-0.5)


def test_physics_conserves_energy_without_a_push_and_a_push_does_work() -> None:
    rng = np.random.default_rng(0)
    p, s = rng.uniform(-0.9, 0.9, 200), rng.uniform(-1.5, 1.5, 200)
    # Without a force the motion is frictionless: 1 s (10 control steps) keeps the energy.
    p1, s1 = p, s
    for _ in range(10):
        p1, s1 = coh.step_batch(p1, s1, np.zeros_like(p))
    assert np.abs(energy(p1, s1) - energy(p, s)).max() < 0.02 * np.abs(energy(p, s)).max()
    # The push u is a force along p: over one step the energy changes by the work u dp.
    for u in coh.FORCES:
        p2, s2 = coh.step_batch(p, s, np.full_like(p, u))
        work = u * (p2 - p)  # up to 1.2 in size; Euler's error is about 1e-2
        assert energy(p2, s2) - energy(p, s) == pytest.approx(work, abs=0.02)


def test_at_rest_at_the_bottom_a_push_accelerates_and_gravity_pulls_back() -> None:
    p, s = coh.step_batch(np.array([-0.5, -0.5]), np.array([0.0, 0.0]), np.array([4.0, -4.0]))
    # Hill'(-0.5) = 0: all of the force accelerates the car, about u dt after 0.1 s.
    assert s == pytest.approx([0.4, -0.4], rel=0.05)
    assert p[0] > -0.5 > p[1]
    # On the slope, at rest and without a force, the car slides down towards the valley.
    p, s = coh.step_batch(np.array([-0.9, 0.3]), np.array([0.0, 0.0]), np.zeros(2))
    assert s[0] > 0 > s[1]


def test_the_car_cannot_climb_straight_from_rest() -> None:
    """The problem's point: pushing right all the time never reaches the top from the
    valley; backing up the left slope first does."""
    right = coh.score_on_grid(lambda o: np.ones(len(o), int), states=np.array([coh.START]))
    assert not right.reached_top[0] and right.returns[0] == 0.0
    assert right.steps[0] == coh.MAX_EPISODE_STEPS  # still on the hill at the time limit

    def back_up_first(observations: np.ndarray) -> np.ndarray:
        """Push left until high on the left slope, then right (unless moving right fast)."""
        p, s = observations[:, 0], observations[:, 1]
        return ((s > 0.5) | (p < -0.8)).astype(int)

    backed = coh.score_on_grid(back_up_first, states=np.array([coh.START]))
    assert backed.reached_top[0] and backed.steps[0] < 30
    assert backed.returns[0] == pytest.approx(coh.DISCOUNT ** (backed.steps[0] - 1))


def test_one_car_and_the_batch_agree_bit_for_bit() -> None:
    rng = np.random.default_rng(1)
    p, s = rng.uniform(-1, 1, 500), rng.uniform(-3, 3, 500)
    u = rng.choice(coh.FORCES, 500)
    batch = coh.step_batch(p, s, u)
    one = np.array([coh._step_one(*args) for args in zip(p, s, u, strict=True)])
    assert np.array_equal(one[:, 0], batch[0]) and np.array_equal(one[:, 1], batch[1])


@pytest.mark.parametrize(
    ("p", "s", "reward", "terminal"),
    [
        (-1.01, 0.0, -1.0, True),  # out by the bottom
        (0.2, 3.01, -1.0, True),  # too fast
        (-0.3, -3.5, -1.0, True),
        (1.01, 2.9, 1.0, True),  # at the top
        (1.01, -3.0, 1.0, True),  # |s| = 3 is allowed
        (1.2, 3.2, -1.0, True),  # at the top, but too fast
        (1.0, 3.0, 0.0, False),  # the boundary is inside
        (-1.0, -3.0, 0.0, False),
        (-0.5, 0.0, 0.0, False),
    ],
)
def test_rewards_and_terminal_states(p: float, s: float, reward: float, terminal: bool) -> None:
    r, done = coh.outcome(np.array([p]), np.array([s]))
    assert r[0] == reward and bool(done[0]) == terminal
    assert coh._outcome_one(p, s) == (reward, terminal)
    env = coh.CarOnHillEnv()
    env._state = (p, s)
    assert coh._outcome_one(*env.state) == (reward, terminal)


def test_the_environment_steps_and_ends_episodes() -> None:
    env = gym.make(coh.ENV_ID)
    observation, _ = env.reset(seed=123)
    assert observation.dtype == np.float32 and observation.tolist() == [-0.5, 0.0]
    assert env.observation_space.contains(observation)
    observation, reward, terminated, truncated, _ = env.step(1)
    assert observation[1] > 0 and reward == 0.0 and not terminated and not truncated
    # Going left fast from the left edge leaves by the bottom at once.
    env.reset(options={"state": (-0.99, -2.9)})
    _, reward, terminated, _, _ = env.step(0)
    assert reward == -1.0 and terminated
    # Going right near the top at an allowed speed reaches it.
    env.reset(options={"state": (0.95, 1.5)})
    _, reward, terminated, _, _ = env.step(1)
    assert reward == 1.0 and terminated
    with pytest.raises(ValueError, match="outside"):
        env.reset(options={"state": (1.5, 0.0)})
    with pytest.raises(ValueError):
        env.step(2)
    env.close()


def test_the_environment_is_deterministic_whatever_the_seed() -> None:
    actions = np.random.default_rng(2).integers(0, 2, 200)

    def trajectory(seed: int) -> list[list[float]]:
        env = coh.CarOnHillEnv()
        env.reset(seed=seed)
        states = []
        for action in actions:
            observation, _, terminated, _, _ = env.step(int(action))
            states.append(observation.tolist())
            if terminated:
                break
        return states

    assert trajectory(0) == trajectory(0) == trajectory(99)


def test_registered_for_the_rl_algorithms() -> None:
    assert coh.ENV_ID in DISCRETE_ENV_IDS
    spaces = env_spaces(coh.ENV_ID)
    assert (spaces.observation_dim, spaces.n_actions, spaces.discrete) == (2, 2, True)
    assert spaces.max_episode_steps == coh.MAX_EPISODE_STEPS
    env = make_env(coh.ENV_ID)
    env.reset()
    truncated = terminated = False
    steps = 0
    while not (terminated or truncated):
        _, _, terminated, truncated, _ = env.step(1)
        steps += 1
    assert truncated and not terminated and steps == coh.MAX_EPISODE_STEPS
    # Greedy evaluation through the shared loop: always pushing right never gets there.
    assert evaluate(lambda o: np.ones(len(o), int), coh.ENV_ID, 2, seed=0) == [0.0, 0.0]


def test_the_papers_grid() -> None:
    grid = coh.GRID_STATES
    assert grid.shape == (289, 2) and not grid.flags.writeable
    assert sorted(set(grid[:, 0])) == pytest.approx(np.arange(-1, 1.0001, 0.125))
    assert sorted(set(grid[:, 1])) == pytest.approx(np.arange(-3, 3.0001, 0.375))
    assert [-1.0, -3.0] in grid.tolist() and [1.0, 3.0] in grid.tolist()


def test_scoring_on_the_grid_is_playing_each_start_state() -> None:
    """The batched score equals episodes played one car at a time in the environment."""

    def policy(observations: np.ndarray) -> np.ndarray:
        return ((observations[:, 0] + observations[:, 1]) > -0.3).astype(int)

    grid = coh.score_on_grid(policy, horizon=120)
    states = coh.GRID_STATES[::7]
    env = coh.CarOnHillEnv()
    for i, state in zip(range(0, len(coh.GRID_STATES), 7), states, strict=True):
        observation, _ = env.reset(options={"state": state})
        ret, reached, steps = 0.0, False, 120
        for t in range(120):
            observation, reward, terminated, _, _ = env.step(int(policy(observation[None])[0]))
            ret += coh.DISCOUNT**t * reward
            if terminated:
                reached, steps = reward > 0, t + 1
                break
        assert grid.returns[i] == ret and grid.reached_top[i] == reached
        assert grid.steps[i] == steps
    assert grid.score == grid.returns.mean() and grid.success == grid.reached_top.mean()
    assert 0.0 < grid.success < 1.0


def test_the_policy_must_give_one_action_per_car() -> None:
    with pytest.raises(ValueError, match="actions"):
        coh.score_on_grid(lambda o: np.zeros(3, int))
    with pytest.raises(ValueError, match="actions"):
        coh.score_on_grid(lambda o: np.full(len(o), 2))
