"""Queries of generative models: draw samples, score points with the discriminator."""

from __future__ import annotations

from typing import Protocol

import numpy as np
from pydantic import BaseModel, Field

from ml.core.validation import MAX_BATCH, observation_batch
from ml.queries.base import NPY, REQUEST, Query, Vector, npy

MAX_SAMPLES = 10_000


class Generates(Protocol):
    data_dim: int

    def generate(self, n: int, seed: int | None) -> np.ndarray: ...


class Discriminates(Protocol):
    data_dim: int

    def discriminate(self, x: np.ndarray) -> np.ndarray: ...


class SamplesRequest(BaseModel):
    model_config = REQUEST

    n: int = Field(1, ge=1, le=MAX_SAMPLES, description="How many samples.")
    seed: int | None = Field(
        None, ge=0, le=2**63 - 1, description="Same seed, same samples; null for fresh ones."
    )


class SamplesResponse(BaseModel):
    samples: list[list[float]] = Field(description="n rows of data_dim numbers.")
    n: int
    seed: int | None


def samples(model: Generates, request: SamplesRequest) -> SamplesResponse:
    points = model.generate(request.n, request.seed)  # x[n, d]
    return SamplesResponse(samples=points.tolist(), n=request.n, seed=request.seed)


SAMPLES = Query(
    name="samples",
    summary="Draw samples from a generator",
    description="Points drawn from the learned distribution; the same seed gives the same "
    "points. As .npy: an (n, data_dim) float32 array.",
    request=SamplesRequest,
    response=SamplesResponse,
    needs=("generate", "data_dim"),
    run=samples,
    renderers={NPY: lambda r: npy(np.asarray(r.samples, dtype=np.float32))},
    examples=({"n": 4, "seed": 0},),
)


class ScoresRequest(BaseModel):
    model_config = REQUEST

    samples: list[Vector] = Field(
        min_length=1, max_length=MAX_BATCH, description="Points of data_dim numbers each."
    )


class ScoresResponse(BaseModel):
    scores: list[float] = Field(
        description="D(x): the probability that each point is real; for a WGAN critic its "
        "unbounded score (higher: more like the data)."
    )


def discriminator_scores(model: Discriminates, request: ScoresRequest) -> ScoresResponse:
    x = observation_batch(request.samples, model.data_dim, field="samples")  # x[n, d]
    return ScoresResponse(scores=np.asarray(model.discriminate(x), dtype=float).tolist())


DISCRIMINATOR_SCORES = Query(
    name="discriminator-scores",
    summary="Score points with the discriminator",
    description="The trained discriminator's D(x), the probability it gives each point of "
    "being real data (a WGAN critic's unbounded score): how a GAN's critic sees any point, "
    "real or generated.",
    request=ScoresRequest,
    response=ScoresResponse,
    needs=("discriminate", "data_dim"),
    run=discriminator_scores,
    renderers={NPY: lambda r: npy(np.asarray(r.scores, dtype=np.float32))},
    examples=({"samples": [[1.0, 0.0], [0.0, 0.0]]},),
)
