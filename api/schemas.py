"""Request and response schemas, one naming ladder per resource (JobCreate, JobPublic,
JobsPublic)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ml.core.validation import MAX_BATCH

MAX_SEED = 2**31 - 1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- algorithms ---------------------------------------------------------------------------
class AlgorithmPublic(BaseModel):
    name: str
    family: str
    description: str
    queue: str
    queries: list[str]
    config_schema: dict[str, Any]


class AlgorithmsPublic(BaseModel):
    data: list[AlgorithmPublic]
    count: int


# -- jobs ---------------------------------------------------------------------------------
class JobCreate(Strict):
    algorithm: str = Field(min_length=1, max_length=64, description="See GET /v1/algorithms.")
    config: dict[str, Any] = Field(default_factory=dict, description="The algorithm's config.")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Every random number of the run.")
    name: str | None = Field(None, max_length=200)
    tags: dict[str, str] = Field(default_factory=dict, max_length=32)

    @model_validator(mode="after")
    def _short_tags(self) -> JobCreate:
        for key, value in self.tags.items():
            if not 0 < len(key) <= 64 or len(value) > 256:
                raise ValueError("tag keys must be 1-64 characters and values at most 256")
        return self


class Progress(BaseModel):
    step: int
    total: int | None
    fraction: float | None
    eta_seconds: float | None


class JobPublic(BaseModel):
    id: str
    name: str | None
    algorithm: str
    status: str
    config: dict[str, Any]
    seed: int
    tags: dict[str, str]
    queue: str
    progress: Progress
    attempt: int
    worker: str | None
    error: str | None
    cancel_requested: bool
    checkpoint_step: int | None
    resumed_from_step: int | None
    created_at: datetime
    enqueued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    links: dict[str, str]


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int
    limit: int
    offset: int


class MetricSeries(BaseModel):
    steps: list[int]
    values: list[float]


class MetricsPublic(BaseModel):
    job_id: str
    metrics: dict[str, MetricSeries]


# -- models -------------------------------------------------------------------------------
class ModelPublic(BaseModel):
    id: str
    job_id: str
    kind: str
    algorithm: str
    queries: list[str]
    shapes: dict[str, Any]
    config: dict[str, Any]
    seed: int
    versions: dict[str, Any]
    summary: dict[str, Any]
    metrics_summary: dict[str, dict[str, float]]
    created_at: datetime | None


class SamplesRequest(Strict):
    n: int = Field(1, ge=1, description="How many samples; at most MAX_SAMPLES.")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="Same seed, same samples.")


class SamplesResponse(BaseModel):
    samples: list[list[float]]
    n: int
    seed: int | None


State = int | list[int]


class QValuesRequest(Strict):
    observations: list[list[float]] | None = Field(
        None, max_length=MAX_BATCH, description="For models of environments with vectors."
    )
    states: list[State] | None = Field(
        None, max_length=MAX_BATCH, description="For tabular models: indices or [row, col]."
    )

    @model_validator(mode="after")
    def _one_input(self) -> QValuesRequest:
        if (self.observations is None) == (self.states is None):
            raise ValueError("send exactly one of 'observations' or 'states'")
        return self


class ActionsRequest(Strict):
    observations: list[list[float]] = Field(max_length=MAX_BATCH)


class ActionsResponse(BaseModel):
    actions: list[Any]


class RewardsRequest(Strict):
    states: list[State] = Field(max_length=MAX_BATCH)
