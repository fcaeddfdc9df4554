"""Car on the hill, as Ernst, Geurts and Wehenkel define it (2005, "Tree-Based Batch Mode
Reinforcement Learning", JMLR 6: the problem of their experiments, specified in their
appendix), after Moore and Atkeson (1995, "The Parti-game Algorithm").

A car of mass m = 1 on the hill

    Hill(p) = p^2 + p              for p < 0
    Hill(p) = p / sqrt(1 + 5 p^2)  for p >= 0

is pushed by a force u in {-4, +4}; its position p and speed s follow

    dp/dt = s
    ds/dt = u / (m (1 + Hill'(p)^2)) - g Hill'(p) / (1 + Hill'(p)^2)
            - s^2 Hill'(p) Hill''(p) / (1 + Hill'(p)^2)

with g = 9.81. A control step lasts 0.1 s, integrated as the paper does with Euler's method
and a step of 0.001 s (100 sub-steps, both derivatives at the sub-step's start). After each
control step the reward is -1 when p < -1 or |s| > 3 (the car left by the bottom or went too
fast), +1 when p > 1 and |s| <= 3 (it reached the top), 0 otherwise; a non-zero reward
ends the episode (a terminal state). The discount is 0.95. The car is too weak to climb the
hill from rest: it must first back up the left slope to gather speed.

The same physics runs one car at a time in `CarOnHillEnv` (Gymnasium, registered as
"CarOnHill-v0"; plain Python floats, fast for a single state) and many at once in
`step_batch` (NumPy, for scoring a policy over a grid of start states); they perform the same
floating-point operations in the same order, so they agree bit for bit.

The paper scores a policy by its mean discounted return from the start states
(p, s) = (0.125 i, 0.375 j), i, j = -8..8: a 17 x 17 grid over [-1, 1] x [-3, 3]
(`GRID_STATES`, `score_on_grid`). Its four-tuples come from episodes that start with the car
at rest at the bottom of the valley, (p, s) = (-0.5, 0), and push left or right uniformly at
random: that is this environment's `reset()`, and `reset(options={"state": (p, s)})` starts
anywhere else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

ENV_ID = "CarOnHill-v0"

MASS = 1.0
GRAVITY = 9.81
FORCES = (-4.0, 4.0)  # u of actions 0 and 1
TIME_STEP = 0.1  # seconds per control step
SUBSTEPS = 100  # Euler steps per control step
EULER_STEP = TIME_STEP / SUBSTEPS  # 0.001 s, the paper's integration step
DISCOUNT = 0.95  # the paper's gamma
MAX_POSITION = 1.0  # |p| <= 1 and |s| <= 3 is the non-terminal region
MAX_SPEED = 3.0
START = (-0.5, 0.0)  # at rest at the bottom of the valley
# Gymnasium's time limit: 30 s of driving. The paper's episodes of random pushes from the
# bottom ran until the car left the region: about 60 steps on average (their 58,090 tuples
# from 1,000 episodes; 61 here), 215 for the longest 1% and rarely past 300. A return past
# step 300 weighs at most 0.95^300 < 3e-7.
MAX_EPISODE_STEPS = 300

# The paper's evaluation grid X^i: p = 0.125 i, s = 0.375 j for i, j = -8..8.
GRID_POSITIONS = 0.125 * np.arange(-8, 9)  # [17]
GRID_SPEEDS = 0.375 * np.arange(-8, 9)  # [17]
GRID_STATES = np.stack(np.meshgrid(GRID_POSITIONS, GRID_SPEEDS, indexing="ij"), -1).reshape(-1, 2)
GRID_STATES.setflags(write=False)  # [289, 2] (p, s), p-major

# Observations [n, 2] float32 -> actions [n] in {0, 1}.
Policy = Callable[[np.ndarray], Sequence[int] | np.ndarray]


# -- physics -------------------------------------------------------------------------------------
def hill(p: np.ndarray) -> np.ndarray:
    """The hill's height Hill(p), for drawing and tests."""
    p = np.asarray(p, dtype=np.float64)
    return np.where(p < 0.0, p * p + p, p / np.sqrt(1.0 + 5.0 * p * p))


def _step_one(p: float, s: float, u: float) -> tuple[float, float]:
    """One control step of one car: 100 Euler sub-steps, in plain floats (a NumPy call per
    operation would cost ten times more for a single state)."""
    h = EULER_STEP
    for _ in range(SUBSTEPS):
        if p < 0.0:
            slope = 2.0 * p + 1.0  # Hill'(p)
            curvature = 2.0  # Hill''(p)
        else:
            q = 1.0 + 5.0 * p * p
            root = math.sqrt(q)
            slope = 1.0 / (q * root)
            curvature = -15.0 * p / (q * q * root)
        accel = (u - GRAVITY * MASS * slope - s * s * MASS * slope * curvature) / (
            MASS * (1.0 + slope * slope)
        )
        p, s = p + h * s, s + h * accel
    return p, s


def step_batch(p: np.ndarray, s: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One control step of n cars at once: p[n], s[n] (float64) pushed by u[n]; the same
    operations as `_step_one`, element by element."""
    h = EULER_STEP
    p, s, u = (np.asarray(x, dtype=np.float64) for x in (p, s, u))
    for _ in range(SUBSTEPS):
        q = 1.0 + 5.0 * p * p
        root = np.sqrt(q)
        left = p < 0.0
        slope = np.where(left, 2.0 * p + 1.0, 1.0 / (q * root))  # Hill'(p)[n]
        curvature = np.where(left, 2.0, -15.0 * p / (q * q * root))  # Hill''(p)[n]
        accel = (u - GRAVITY * MASS * slope - s * s * MASS * slope * curvature) / (
            MASS * (1.0 + slope * slope)
        )
        p, s = p + h * s, s + h * accel
    return p, s


def outcome(p: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reward r[n] and terminal[n] of arriving in (p, s): -1 out by the bottom or too fast,
    +1 at the top at an allowed speed, else 0 and not terminal."""
    p, s = np.asarray(p), np.asarray(s)
    lost = (p < -MAX_POSITION) | (np.abs(s) > MAX_SPEED)
    won = (p > MAX_POSITION) & ~lost
    return won.astype(np.float64) - lost.astype(np.float64), lost | won


def _outcome_one(p: float, s: float) -> tuple[float, bool]:
    if p < -MAX_POSITION or abs(s) > MAX_SPEED:
        return -1.0, True
    if p > MAX_POSITION:
        return 1.0, True
    return 0.0, False


def _non_terminal(state: Any) -> tuple[float, float]:
    """A start state given as (p, s), checked to lie in the non-terminal region."""
    p, s = (float(x) for x in np.asarray(state, dtype=np.float64).reshape(2))
    if not (abs(p) <= MAX_POSITION and abs(s) <= MAX_SPEED):
        raise ValueError(f"start state (p, s) = ({p}, {s}) is outside [-1, 1] x [-3, 3]")
    return p, s


# -- the Gymnasium environment -------------------------------------------------------------------
class CarOnHillEnv(gym.Env[np.ndarray, np.int64]):
    """Car on the hill (Ernst et al. 2005): observation (p, s) float32, actions 0 (u = -4)
    and 1 (u = +4). Deterministic: `reset` starts at (-0.5, 0) whatever the seed, or at
    `options["state"]`."""

    metadata: dict[str, Any] = {"render_modes": []}  # Gymnasium's attribute

    def __init__(self) -> None:
        # The non-terminal region, and the one step past it that ends an episode: within a
        # control step |ds/dt| <= 4 + g/2 + 9 < 18 and |dp/dt| <= 3 + 1.8.
        high = np.array([2.0, 6.0], dtype=np.float32)
        self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)
        self.action_space = gym.spaces.Discrete(len(FORCES))
        self._state = START

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        state = (options or {}).get("state")
        self._state = START if state is None else _non_terminal(state)
        return self._observation(), {}

    def step(self, action: int | np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"action must be 0 or 1, got {action!r}")
        self._state = _step_one(*self._state, FORCES[int(action)])
        reward, terminal = _outcome_one(*self._state)
        return self._observation(), reward, terminal, False, {}

    @property
    def state(self) -> tuple[float, float]:
        """(p, s) in float64, as the physics keeps it (observations are float32)."""
        return self._state

    def _observation(self) -> np.ndarray:
        return np.asarray(self._state, dtype=np.float32)


if ENV_ID not in gym.registry:
    gym.register(
        id=ENV_ID,
        entry_point="ml.rl.car_on_hill:CarOnHillEnv",
        max_episode_steps=MAX_EPISODE_STEPS,
    )


# -- scoring a policy on the paper's grid --------------------------------------------------------
@dataclass(frozen=True)
class GridScore:
    """A policy played once from each start state (the environment is deterministic)."""

    returns: np.ndarray  # [n] discounted return from each start state
    reached_top: np.ndarray  # [n] bool: ended at the top (+1) within the horizon
    steps: np.ndarray  # [n] control steps played (the horizon for an unfinished episode)

    @property
    def score(self) -> float:
        """Mean discounted return: the paper's score of a policy."""
        return float(self.returns.mean())

    @property
    def success(self) -> float:
        """Fraction of the start states from which the car reaches the top."""
        return float(self.reached_top.mean())


def score_on_grid(
    policy: Policy,
    *,
    states: np.ndarray | None = None,
    gamma: float = DISCOUNT,
    horizon: int = MAX_EPISODE_STEPS,
    interrupt: Callable[[], None] | None = None,
) -> GridScore:
    """Play `policy` from every start state (default: the paper's 289-state grid) for at
    most `horizon` steps, all cars as one batch: one `policy` call and one `step_batch` per
    time step, on the observations (float32 [m, 2]) of the m cars still running. `interrupt`
    is called before each time step (a training run's stop, `Run.interrupt_if_asked`)."""
    start = GRID_STATES if states is None else np.asarray(states, dtype=np.float64)
    p, s = start[:, 0].copy(), start[:, 1].copy()  # p[n], s[n]
    n = len(p)
    returns = np.zeros(n)  # discounted returns[n]
    reached = np.zeros(n, dtype=bool)
    steps = np.full(n, horizon, dtype=np.int64)
    running = np.arange(n)  # indices of the cars still on the hill
    for t in range(horizon):
        if running.size == 0:
            break
        if interrupt is not None:
            interrupt()
        observations = np.stack([p[running], s[running]], axis=1).astype(np.float32)
        actions = np.asarray(policy(observations)).reshape(-1).astype(np.int64)
        if actions.shape != running.shape or np.any((actions < 0) | (actions >= len(FORCES))):
            raise ValueError(f"the policy must return {running.size} actions in {{0, 1}}")
        u = np.asarray(FORCES)[actions]
        p[running], s[running] = step_batch(p[running], s[running], u)
        reward, terminal = outcome(p[running], s[running])
        returns[running] += gamma**t * reward
        done = running[terminal]
        reached[done] = reward[terminal] > 0
        steps[done] = t + 1
        running = running[~terminal]
    return GridScore(returns=returns, reached_top=reached, steps=steps)
