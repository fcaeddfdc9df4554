"""The client's own types for what the API sends and takes. They import nothing of the
server (a client installs without torch), so `tests/client/test_openapi_types.py` holds them
to the server's OpenAPI document: every field here exists there with a compatible type, and
is required exactly when the server requires it.

Answers keep fields this client does not know yet (`extra="allow"`), so a newer server never
breaks an older client; request bodies are sent without their unset fields, since the server
refuses fields it does not know.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class Answer(BaseModel):
    """Something the server sends."""

    model_config = ConfigDict(extra="allow")


class Body(BaseModel):
    """Something the client sends: dumped without unset or null fields."""

    model_config = ConfigDict(extra="forbid")

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


Item = TypeVar("Item", bound=Answer)


class Page(Answer, Generic[Item]):
    """One page of a list: `count` is the total over every page."""

    data: list[Item]
    count: int
    limit: int
    offset: int


# -- algorithms and environments -------------------------------------------------------------
class QueryInfo(Answer):
    name: str
    summary: str
    description: str
    methods: list[str]
    media_types: list[str]
    path: str
    request_schema: dict[str, Any]
    response_schema: dict[str, Any]


class Algorithm(Answer):
    name: str
    family: str
    description: str
    queue: str
    queries: list[str]
    query_details: list[QueryInfo]
    dataset_kinds: list[str]
    config_schema: dict[str, Any]


class Algorithms(Answer):
    data: list[Algorithm]
    count: int


class Environment(Answer):
    name: str
    family: str
    description: str
    observation_space: dict[str, Any]
    action_space: dict[str, Any]
    max_episode_steps: int | None = None
    algorithms: list[str]
    example: dict[str, Any]


class Environments(Answer):
    data: list[Environment]
    count: int


# -- jobs ------------------------------------------------------------------------------------
class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


FINISHED = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled})


class Progress(Answer):
    step: int
    total: int | None
    fraction: float | None
    eta_seconds: int | None


class JobWarning(Answer):
    step: int
    code: str
    message: str


class RegisterSpec(Body):
    """Register the job's model under `name` (and point `aliases` at it) once it succeeds."""

    name: str
    aliases: list[str] = Field(default_factory=list)


class RegisteredSpec(Answer):
    name: str
    aliases: list[str] = Field(default_factory=list)


class WebhookSpec(Body):
    """Where the server posts the job once it finishes, signed with `secret` (16 to 256
    characters) so that the receiver can tell the post is genuine."""

    url: str
    secret: str


class WebhookState(Answer):
    """How the delivery of a job's webhook is going: waiting, pending, delivered, failed."""

    url: str
    status: str
    attempts: int
    last_error: str | None


class JobSpec(Body):
    """The body of `POST /v1/jobs`."""

    algorithm: str
    config: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0
    name: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    register_as: RegisterSpec | None = None
    max_runtime_seconds: float | None = None
    webhook: WebhookSpec | None = None


class CloneSpec(Body):
    """The body of `POST /v1/jobs/{id}/clone`: `config` is a JSON merge patch."""

    seed: int | None = None
    name: str | None = None
    tags: dict[str, str] | None = None
    config: dict[str, Any] | None = None


class ContinueSpec(Body):
    """The body of `POST /v1/models/{model}/continue`: `config` is a JSON merge patch onto
    the config of the job that made the model (usually a larger budget)."""

    config: dict[str, Any] | None = None
    name: str | None = None
    tags: dict[str, str] | None = None


class Job(Answer):
    id: str
    name: str | None
    algorithm: str
    status: JobStatus
    config: dict[str, Any]
    seed: int
    tags: dict[str, str]
    queue: str
    progress: Progress
    attempt: int
    worker: str | None
    error: str | None
    error_code: str | None
    warnings: list[JobWarning]
    model_id: str | None
    register_as: RegisteredSpec | None
    max_runtime_seconds: float | None
    cancel_requested: bool
    submitted_by: str | None
    cancelled_by: str | None
    checkpoint_step: int | None
    resumed_from_step: int | None
    created_at: datetime
    enqueued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    links: dict[str, str]
    queue_position: int | None = None
    estimated_start_seconds: int | None = None
    webhook: WebhookState | None = None
    continued_from: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class MetricSeries(Answer):
    steps: list[int]
    values: list[float]


class Metrics(Answer):
    job_id: str
    metrics: dict[str, MetricSeries]


class LogRecord(Answer):
    id: int
    attempt: int
    worker: str | None
    time: datetime
    level: str
    logger: str
    message: str


class Logs(Answer):
    """A page of a job's log: pass `next_after` as `after` for the records that follow."""

    data: list[LogRecord]
    next_after: int | None
    has_more: bool
    job_finished: bool


# -- models, names, queries ------------------------------------------------------------------
class RegisteredAs(Answer):
    name: str
    version: int
    aliases: list[str]


class TrainedModel(Answer):
    id: str
    job_id: str | None
    kind: str
    algorithm: str
    queries: list[str]
    shapes: dict[str, Any]
    config: dict[str, Any]
    seed: int | None
    versions: dict[str, Any]
    summary: dict[str, Any]
    metrics_summary: dict[str, dict[str, float]]
    size_bytes: int
    sha256: str
    registered_as: list[RegisteredAs]
    created_at: datetime
    links: dict[str, str]


class VersionSpec(Body):
    model_id: str


class AliasSpec(Body):
    version: int


class ModelVersion(Answer):
    name: str
    version: int
    model_id: str
    created_at: datetime
    aliases: list[str]


class Alias(Answer):
    name: str
    alias: str
    version: int
    model_id: str
    updated_at: datetime


class RegisteredName(Answer):
    name: str
    latest_version: int
    versions: list[ModelVersion]
    aliases: dict[str, int]


class NameSummary(Answer):
    name: str
    latest_version: int
    versions: int


class QueryPending(Answer):
    """A heavy query running on a worker: poll `location`."""

    id: str
    status: JobStatus
    query: str
    model_id: str
    location: str


# -- datasets --------------------------------------------------------------------------------
class Dataset(Answer):
    id: str
    name: str | None
    kind: str
    builtin: bool = False
    rows: int | None
    size_bytes: int | None
    sha256: str | None
    summary: dict[str, Any]
    used_by: list[str] = Field(default_factory=list)
    created_at: datetime | None
    reference: dict[str, Any]


# -- keys ------------------------------------------------------------------------------------
class KeySpec(Body):
    tenant: str
    scopes: list[str]
    name: str | None = None
    expires_in_days: float | None = None


class Key(Answer):
    id: str
    prefix: str
    tenant: str
    name: str | None
    scopes: list[str]
    state: str
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyCreated(Key):
    key: str


class Caller(Answer):
    tenant: str
    key_id: str | None
    scopes: list[str]
    auth_required: bool
