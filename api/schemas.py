"""Request and response schemas, one naming ladder per resource (JobCreate, JobPublic,
JobsPublic). Query requests and responses are not here: each query declares its own in
`ml.queries`."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from store.keys import Scope

MAX_SEED = 2**31 - 1


class Strict(BaseModel):
    """A request body: no field it does not declare, and JSON's types, strictly (`"5"` and
    `true` are no numbers; `1` is a fine float). Validation is in Python mode (FastAPI hands
    over the parsed JSON), where strict also refuses a string for an enum and an array for a
    tuple: such a field says so, as `scopes` does (`Annotated[Scope, Field(strict=False)]`)."""

    model_config = ConfigDict(extra="forbid", strict=True)


# -- algorithms ---------------------------------------------------------------------------
class QueryPublic(BaseModel):
    name: str
    summary: str
    description: str
    methods: list[str] = Field(description="POST with a body; GET too when nothing is required.")
    media_types: list[str] = Field(description="What `Accept` or `?format=` may ask for.")
    path: str = Field(description="Where to send it, with {model} for a model reference.")
    request_schema: dict[str, Any]
    response_schema: dict[str, Any]


class AlgorithmPublic(BaseModel):
    name: str
    family: str
    description: str
    queue: str
    queries: list[str] = Field(description="Names of the queries its models answer.")
    query_details: list[QueryPublic] = Field(description="Those queries with their schemas.")
    dataset_kinds: list[str] = Field(description="Uploaded dataset kinds its config accepts.")
    config_schema: dict[str, Any]


class AlgorithmsPublic(BaseModel):
    data: list[AlgorithmPublic]
    count: int


class EnvironmentPublic(BaseModel):
    name: str = Field(description="The Gymnasium id, or the tabular world's kind.")
    family: Literal["gymnasium", "tabular"]
    description: str
    observation_space: dict[str, Any] = Field(
        description="{'type': 'box', 'shape'} for vectors; {'type': 'discrete', 'n', 'shape'} "
        "for the states of tabular worlds."
    )
    action_space: dict[str, Any] = Field(
        description="{'type': 'discrete', 'n'} or {'type': 'box', 'shape', 'low', 'high'}."
    )
    max_episode_steps: int | None = Field(None, description="Gymnasium's time limit.")
    algorithms: list[str] = Field(description="The algorithms whose `env` accepts it.")
    example: dict[str, Any] = Field(description="How a job's config names it.")


class EnvironmentsPublic(BaseModel):
    data: list[EnvironmentPublic]
    count: int


# -- jobs ---------------------------------------------------------------------------------
class RegisterSpec(Strict):
    """Register the job's model under a name when the job succeeds."""

    name: str = Field(min_length=1, max_length=128, description="The registered model name.")
    aliases: list[str] = Field(
        default_factory=list, max_length=8, description="Aliases to point at the new version."
    )


class WebhookSpec(Strict):
    """Where to tell another app that the job ended, so it need not poll."""

    url: str = Field(
        min_length=8,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description="Called with POST when the job ends (succeeded, failed or cancelled): a "
        'JSON body `{"event": "job.finished", "job": <the job>}`, retried with '
        "exponential back-off until it answers 2xx.",
    )
    secret: str = Field(
        min_length=16,
        max_length=256,
        description="Signs each call: header `Crucible-Signature: t=<unix time>,v1=<hex "
        "HMAC-SHA256 of '<t>.<body>' with this secret>`. Never shown again.",
    )


class WebhookPublic(BaseModel):
    url: str
    status: Literal["waiting", "pending", "delivered", "failed"] = Field(
        description="waiting: the job has not ended; pending: being called (retried with "
        "back-off); delivered: answered 2xx; failed: given up after every try."
    )
    attempts: int
    last_error: str | None


class JobCreate(Strict):
    algorithm: str = Field(min_length=1, max_length=64, description="See GET /v1/algorithms.")
    config: dict[str, Any] = Field(default_factory=dict, description="The algorithm's config.")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Every random number of the run.")
    name: str | None = Field(None, max_length=200)
    tags: dict[str, str] = Field(default_factory=dict, max_length=32)
    register_as: RegisterSpec | None = Field(
        None, description="Register the model under this name when the job succeeds."
    )
    max_runtime_seconds: float | None = Field(
        None,
        gt=0,
        le=30 * 24 * 3600,
        description="Wall-clock limit: past it the run stops with a checkpoint and the job "
        "fails with error_code timed_out.",
    )
    webhook: WebhookSpec | None = Field(None, description="Call a URL when the job ends.")

    @model_validator(mode="after")
    def _short_tags(self) -> JobCreate:
        for key, value in self.tags.items():
            if not 0 < len(key) <= 64 or len(value) > 256:
                raise ValueError("tag keys must be 1-64 characters and values at most 256")
        return self


class JobContinue(Strict):
    """A new job that goes on from where a model's training ended: what it changes of the
    original's spec (everything left out is the original's)."""

    config: dict[str, Any] | None = Field(
        None,
        description="A JSON merge patch (RFC 7396) onto the original config: a larger budget "
        "(`total_steps`, `max_iterations`), usually nothing else (a change the saved state "
        "cannot take, a wider network, makes the run start over, with a warning).",
    )
    name: str | None = Field(None, max_length=200)
    tags: dict[str, str] | None = Field(None, max_length=32)
    register_as: RegisterSpec | None = None
    max_runtime_seconds: float | None = Field(None, gt=0, le=30 * 24 * 3600)
    webhook: WebhookSpec | None = None


class JobClone(JobContinue):
    """What a copy of a job changes; everything left out is the original's."""

    config: dict[str, Any] | None = Field(
        None, description="A JSON merge patch (RFC 7396) onto the original's config."
    )
    seed: int | None = Field(None, ge=0, le=MAX_SEED)


class Progress(BaseModel):
    step: int = Field(description="Steps done (an integer).")
    total: int | None = Field(description="Steps the run will take, when known.")
    fraction: float | None = Field(description="step / total, to four decimals.")
    eta_seconds: int | None = Field(
        description="Whole seconds left at this attempt's pace (running jobs only)."
    )


class JobStatusName(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class Warning_(BaseModel):
    step: int
    code: str
    message: str


class JobPublic(BaseModel):
    id: str
    name: str | None
    algorithm: str
    status: JobStatusName
    config: dict[str, Any]
    seed: int
    tags: dict[str, str]
    queue: str
    progress: Progress
    attempt: int
    worker: str | None
    error: str | None
    error_code: str | None = Field(
        description="Why it failed, for programs: diverged, invalid_config, worker_lost..."
    )
    warnings: list[Warning_] = Field(description="Legal but suspicious things the run saw.")
    model_id: str | None = Field(description="The model it made, once it succeeded.")
    register_as: RegisterSpec | None
    max_runtime_seconds: float | None
    queue_position: int | None = Field(
        None,
        description="A queued job's place in its queue (1: next to start); null otherwise.",
    )
    estimated_start_seconds: int | None = Field(
        None,
        description="A queued job's estimated wait, in whole seconds, from the running jobs' "
        "ETAs and recent durations of the jobs ahead; null when unknown (no worker seen on "
        "its queue lately) or the job is not queued.",
    )
    webhook: WebhookPublic | None = Field(None, description="The job's webhook and its calls.")
    continued_from: str | None = Field(
        None, description="The job whose final state this one went on from."
    )
    cancel_requested: bool
    submitted_by: str | None = Field(description="Id of the API key that submitted it.")
    cancelled_by: str | None = Field(description="Id of the API key that cancelled it.")
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


class ComparePublic(BaseModel):
    jobs: dict[str, MetricsPublic] = Field(description="Each compared job's series, by id.")


# -- models -------------------------------------------------------------------------------
class RegisteredAs(BaseModel):
    name: str
    version: int
    aliases: list[str]


class ModelPublic(BaseModel):
    id: str
    job_id: str | None = Field(description="The job that trained it; null if imported.")
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


class ModelsPublic(BaseModel):
    data: list[ModelPublic]
    count: int
    limit: int
    offset: int


# -- registry -----------------------------------------------------------------------------
class VersionCreate(Strict):
    model_id: str = Field(
        min_length=1, max_length=200, description="A model id, job id or name@alias."
    )


class AliasUpdate(Strict):
    version: int = Field(ge=1, le=2**31 - 1, description="The version the alias points at.")


class VersionPublic(BaseModel):
    name: str
    version: int
    model_id: str
    created_at: datetime
    aliases: list[str]


class AliasPublic(BaseModel):
    name: str
    alias: str
    version: int
    model_id: str
    updated_at: datetime


class NamePublic(BaseModel):
    name: str
    latest_version: int
    versions: list[VersionPublic]
    aliases: dict[str, int]


class NameSummaryPublic(BaseModel):
    name: str
    latest_version: int
    versions: int


class NamesPublic(BaseModel):
    data: list[NameSummaryPublic]
    count: int
    limit: int
    offset: int


# -- datasets -----------------------------------------------------------------------------
class DatasetPublic(BaseModel):
    id: str
    name: str | None
    kind: str
    builtin: bool = False
    rows: int | None
    size_bytes: int | None
    sha256: str | None
    summary: dict[str, Any] = Field(description="Shapes, dtypes and kind-specific facts.")
    used_by: list[str] = Field(default_factory=list, description="Ids of jobs that use it.")
    created_at: datetime | None
    reference: dict[str, Any] = Field(description="What a job config's `dataset` field takes.")


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    count: int
    limit: int
    offset: int


# -- heavy query results --------------------------------------------------------------------
class QueryResultPending(BaseModel):
    id: str
    status: JobStatusName
    query: str
    model_id: str
    location: str


# -- API keys and tenants -------------------------------------------------------------------
class KeyCreate(Strict):
    tenant: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="The tenant the key acts for; created on first use.",
    )
    scopes: list[Annotated[Scope, Field(strict=False)]] = Field(
        min_length=1, max_length=4, description="What the key may do."
    )
    name: str | None = Field(None, max_length=200, description="What the key is for.")
    expires_in_days: float | None = Field(
        None, gt=0, le=3650, description="The key stops working this long after creation."
    )


class KeyPublic(BaseModel):
    id: str
    prefix: str = Field(description="The key's first characters, kept in clear to tell it apart.")
    tenant: str
    name: str | None
    scopes: list[str]
    state: str = Field(description="active, expired or revoked.")
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(description="Recorded to the minute.")


class KeyCreated(KeyPublic):
    key: str = Field(description="The key itself. Shown this once: only its hash is kept.")


class KeysPublic(BaseModel):
    data: list[KeyPublic]
    count: int
    limit: int
    offset: int


class CallerPublic(BaseModel):
    tenant: str
    key_id: str | None = Field(description="Null when the API runs open and no key was sent.")
    scopes: list[str]
    auth_required: bool


class QuotaValues(Strict):
    active_jobs: int | None = Field(
        None, ge=0, le=1_000_000, description="Queued plus running jobs; null: the default."
    )
    storage_bytes: int | None = Field(
        None, ge=0, le=2**62, description="Bytes of models and datasets; null: the default."
    )
    queries_per_minute: int | None = Field(
        None, ge=0, le=10_000_000, description="Model queries a minute; null: the default."
    )


class TenantPublic(BaseModel):
    tenant: str
    quotas: dict[str, int] = Field(description="The quotas in force (0: no limit).")
    overrides: QuotaValues = Field(description="This tenant's own values (null: the default).")
    usage: dict[str, int] = Field(description="Active jobs and stored bytes now.")
