"""Evaluate a trained policy by playing it: greedy returns over fresh episodes.

A few episodes answer within a request; many run on a worker (`heavy`), since each episode
of CartPole can be 500 steps.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from pydantic import BaseModel, Field

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
    )


EVALUATE = Query(
    name="evaluate",
    summary="Play the greedy policy and report its returns",
    description=f"Plays `episodes` greedy episodes in the model's environment. Up to "
    f"{QUICK_EPISODES} episodes answer at once; more run on a worker and answer 202 with the "
    "result's location.",
    request=EvaluateRequest,
    response=EvaluateResponse,
    needs=("evaluate_policy",),
    run=evaluate,
    heavy=lambda request: request.episodes > QUICK_EPISODES,
    examples=({"episodes": 10, "seed": 0},),
)
