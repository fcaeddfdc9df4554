"""SQLAlchemy tables: jobs (the source of truth of a run's state) and their metric points,
trained models and their registered names, versions and aliases, and uploaded datasets.

"Model" in Crucible means a trained model; the ORM classes here are tables (`TrainedModelRow`
is the row of one), so the word keeps one meaning.

The schema is created by Alembic migrations (`migrations/`), never by `create_all` outside
tests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


class Base(DeclarativeBase):
    pass


# Every resource belongs to a tenant. An API that runs open (AUTH_REQUIRED=false) serves
# callers without a key as this one; keys name their own.
DEFAULT_TENANT = "default"


def tenant_column() -> Mapped[str]:
    return mapped_column(String(64), index=True, default=DEFAULT_TENANT)


class JobKind(StrEnum):
    train = "train"  # a training run: its success makes a model
    query = "query"  # a heavy query on a model, run on the `queries` queue


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = tenant_column()
    kind: Mapped[str] = mapped_column(String(16), index=True, default=JobKind.train)
    name: Mapped[str | None] = mapped_column(String(200))
    algorithm: Mapped[str] = mapped_column(String(64), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(BigInteger)
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    queue: Mapped[str] = mapped_column(String(16))

    status: Mapped[str] = mapped_column(String(16), index=True, default=JobStatus.queued)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # The API keys (ids) that submitted and cancelled the job; none when the API runs open.
    submitted_by: Mapped[str | None] = mapped_column(String(32))
    cancelled_by: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    # Why a job failed, for programs: "diverged", "invalid_config", "worker_lost", ...
    error_code: Mapped[str | None] = mapped_column(String(64))
    # [{"step", "code", "message"}]: legal but suspicious things the run reported.
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # {"name": ..., "aliases": [...]}: register the model under a name when the job succeeds.
    register_as: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # {reference: model id}: the finished models the config names, pinned at submission.
    model_refs: Mapped[dict[str, str] | None] = mapped_column(JSON)

    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    # Where the current attempt started, so the ETA reflects this attempt's speed.
    attempt_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempt_start_step: Mapped[int] = mapped_column(Integer, default=0)

    # The lease: who runs the job, which attempt, and until when nobody else may.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    # Attempts whose worker died (lease expired); MAX_ATTEMPTS bounds this, not `attempt`,
    # which also counts clean hand-backs at a worker's shutdown.
    lost_workers: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    checkpoint_step: Mapped[int | None] = mapped_column(Integer)
    # The current checkpoint's URI: each attempt writes its own file and only the lease
    # holder's write is recorded, so a stale worker can never replace the owner's checkpoint.
    checkpoint_uri: Mapped[str | None] = mapped_column(String(1024))
    # A wall-clock limit: past it the run stops with a checkpoint and fails (`timed_out`).
    max_runtime_seconds: Mapped[float | None] = mapped_column(Float)
    resumed_from_step: Mapped[int | None] = mapped_column(Integer)
    # Query jobs only: what identifies the result for reuse, where it is, and until when.
    cache_key: Mapped[str | None] = mapped_column(String(64), index=True)
    result_uri: Mapped[str | None] = mapped_column(String(1024))
    result_media_type: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # The job whose final checkpoint this one started from (a model's training continued).
    continued_from: Mapped[str | None] = mapped_column(String(32))
    # {"url", "secret"}: called (signed with the secret) when the job ends; see store/webhooks.py.
    webhook: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # pending (to call), delivered, failed (gave up); null: no webhook or the job runs.
    webhook_status: Mapped[str | None] = mapped_column(String(16))
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0)
    webhook_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    webhook_last_error: Mapped[str | None] = mapped_column(String(500))

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class MetricPoint(Base):
    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_job_name_step", "job_id", "name", "step"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("jobs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    step: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float] = mapped_column(Float)


def autoincrement_id() -> Mapped[int]:
    """A 64-bit id on PostgreSQL (an integer on SQLite, where only that autoincrements)."""
    return mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )


class JobEvent(Base):
    """A change of a job's status (queued, running as attempt N on worker W, finished) or a
    warning, in the order it happened: the history `GET /v1/jobs/{id}/events` replays.

    Every insert happens after the transaction took the job's row lock (the transition's
    UPDATE, or `store.jobs.hold`), so one job's events commit in the order of their ids and
    a reader that saw id n never misses a later-committed smaller one."""

    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job_id_id", "job_id", "id"),)

    id: Mapped[int] = autoincrement_id()
    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("jobs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # status | warning
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobLog(Base):
    """A log record of a job's run, from every attempt, written by its worker in the fenced
    transaction of its metric points (so ids are in commit order per job, as events are)."""

    __tablename__ = "job_logs"
    __table_args__ = (Index("ix_job_logs_job_id_id", "job_id", "id"),)

    id: Mapped[int] = autoincrement_id()
    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    level: Mapped[str] = mapped_column(String(16))
    logger: Mapped[str] = mapped_column(String(128))
    message: Mapped[str] = mapped_column(Text)


class WorkerRow(Base):
    """A worker process that is up, with the queues it takes jobs from: its sweeper says so
    every SWEEP_SECONDS (`store.workers`). Idle workers are seen here, as running jobs' leases
    cannot show them, so a queued job's estimated start knows a free worker will take it."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)  # as in `jobs.worker`
    queues: Mapped[list[str]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class TrainedModelRow(Base):
    """A trained model: made by a job that succeeded, or imported from a model file."""

    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = tenant_column()
    job_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("jobs.id", ondelete="SET NULL"), unique=True
    )
    kind: Mapped[str] = mapped_column(String(64))
    algorithm: Mapped[str] = mapped_column(String(64), index=True)
    # The model file's own metadata: shapes, config, seed, library versions, summary.
    model_metadata: Mapped[dict[str, Any]] = mapped_column(JSON)
    artifact_uri: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ModelVersion(Base):
    """Version `version` of the tenant's registered name `name` is the model `model_id`."""

    __tablename__ = "model_versions"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True, default=DEFAULT_TENANT)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[str] = mapped_column(String(32), ForeignKey("models.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModelAlias(Base):
    """`name@alias` (production, staging...) points at one version of `name`."""

    __tablename__ = "model_aliases"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant", "name", "version"],
            ["model_versions.tenant", "model_versions.name", "model_versions.version"],
            name="fk_model_aliases_version",
        ),
    )

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True, default=DEFAULT_TENANT)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DatasetRow(Base):
    """An uploaded dataset: validated, stored once per content (sha256) in canonical form."""

    __tablename__ = "datasets"
    # Deduplicated per tenant: the same file uploaded by two tenants is two datasets.
    __table_args__ = (
        UniqueConstraint("tenant", "kind", "sha256", name="uq_datasets_tenant_kind_sha256"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = tenant_column()
    name: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    sha256: Mapped[str] = mapped_column(String(64))  # of the uploaded file
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(BigInteger)
    # Shapes, dtypes and kind-specific facts (observation size, number of actions...).
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    artifact_uri: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class JobDataset(Base):
    """Which jobs use which datasets: shown on a dataset, and guards its deletion."""

    __tablename__ = "job_datasets"

    job_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    dataset_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class IdempotencyKey(Base):
    """A client's `Idempotency-Key` for a submission: a retry with the same key (and the same
    request) answers the resource the first one created instead of creating another."""

    __tablename__ = "idempotency_keys"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True, default=DEFAULT_TENANT)
    scope: Mapped[str] = mapped_column(String(32), primary_key=True)  # "jobs", "datasets"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ApiKey(Base):
    """An API key: `Authorization: Bearer <key>`. Only its SHA-256 is stored, and its prefix
    (`crk_` and 8 characters) in clear, to find it and to tell keys apart in lists. A key's
    secret has 256 bits of entropy, so a plain hash is as good as a slow one here."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[str | None] = mapped_column(String(32))  # a key id, or "admin"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TenantQuota(Base):
    """An admin's per-tenant quota values; a missing row or a null column means the
    deployment's default (the QUOTA_* settings)."""

    __tablename__ = "tenant_quotas"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    active_jobs: Mapped[int | None] = mapped_column(Integer)
    storage_bytes: Mapped[int | None] = mapped_column(BigInteger)
    queries_per_minute: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
