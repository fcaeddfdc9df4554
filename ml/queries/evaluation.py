"""Evaluate a trained policy by playing it: greedy returns over fresh episodes.

A few episodes answer within a request; many run on a worker (`heavy`), since each episode
of CartPole can be 500 steps.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats

from ml.queries.base import REQUEST, Query

QUICK_EPISODES = 20  # more than this runs on a worker
MAX_EPISODES = 1_000


class PlaysEpisodes(Protocol):
    def evaluate_policy(self, episodes: int, seed: int) -> list[float]: ...


class EvaluateRequest(BaseModel):
    model_config = REQUEST

    episodes: int = Field(10, ge=1, le=MAX_EPISODES, description="Episodes to play.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Episode i starts from reset(seed + i).")


class EvaluateResponse(BaseModel):
    episodes: int
    seed: int
    returns: list[float] = Field(description="Undiscounted return of each episode.")
    mean: float
    std: float
    min: float
    max: float
    ci95: list[float] | None = Field(
        description="95% confidence interval of the mean return, [low, high] (Student's t "
        "over the episodes; null for one episode)."
    )


def evaluate(model: PlaysEpisodes, request: EvaluateRequest) -> EvaluateResponse:
    returns = np.asarray(model.evaluate_policy(request.episodes, request.seed), dtype=float)
    return EvaluateResponse(
        episodes=request.episodes,
        seed=request.seed,
        returns=returns.tolist(),
        mean=float(returns.mean()),
        std=float(returns.std()),
        min=float(returns.min()),
        max=float(returns.max()),
        ci95=confidence_interval(returns),
    )


def confidence_interval(returns: np.ndarray, level: float = 0.95) -> list[float] | None:
    """mean +- t_{(1+level)/2, n-1} s / sqrt(n), s the sample standard deviation."""
    n = len(returns)
    if n < 2:
        return None
    half = float(stats.t.ppf((1 + level) / 2, n - 1) * returns.std(ddof=1) / np.sqrt(n))
    mean = float(returns.mean())
    return [mean - half, mean + half]


EVALUATE = Query(
    name="evaluate",
    summary="Play the greedy policy and report its returns",
    description=f"Plays `episodes` greedy episodes in the model's environment: each return, "
    "their mean, std, range and the mean's 95% confidence interval. Up to "
    f"{QUICK_EPISODES} episodes answer at once; more run on a worker and answer 202 with the "
    "result's location.",
    request=EvaluateRequest,
    response=EvaluateResponse,
    needs=("evaluate_policy",),
    run=evaluate,
    heavy=lambda request: request.episodes > QUICK_EPISODES,
    examples=({"episodes": 10, "seed": 0},),
)
