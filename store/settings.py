"""The one `Settings` object, read from environment variables (documented in the README).

It lives in `store/` because every process (API, worker, migrations) imports `store`, and
`ml` never reads settings: it is handed plain arguments.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    var_dir: Path = Field(Path("var"), description="Root of the embedded mode's files.")
    database_url: str = Field(
        "", description="SQLAlchemy URL; empty means SQLite at VAR_DIR/crucible.sqlite."
    )
    broker_url: str = Field(
        "", description="Celery broker URL; empty means kombu's SQLAlchemy transport on SQLite."
    )
    broker_key_prefix: str = Field(
        "",
        max_length=64,
        description="Prefix of every key the Redis broker writes, so several deployments (or "
        "test runs) can share one Redis database without seeing each other's messages.",
    )
    artifact_url: str = Field(
        "",
        description="Where models, checkpoints, datasets and query results go: a folder, or "
        "s3://bucket/prefix on an S3-compatible server; empty means VAR_DIR/artifacts.",
    )
    artifact_dir: Path | None = Field(
        None, description="Deprecated alias of ARTIFACT_URL for a local folder (until v2)."
    )
    s3_endpoint_url: str | None = Field(
        None, description="Endpoint of the S3-compatible server; empty means AWS itself."
    )
    aws_access_key_id: str | None = Field(None, description="S3 access key.")
    aws_secret_access_key: str | None = Field(None, description="S3 secret key.")
    aws_region: str = Field("us-east-1", description="S3 region (any value for most servers).")
    lease_seconds: float = Field(
        60.0, gt=0, description="A running job whose heartbeat is older than this is orphaned."
    )
    heartbeat_seconds: float = Field(
        10.0, gt=0, description="How often a worker renews the lease of the job it runs."
    )
    sweep_seconds: float = Field(
        15.0, gt=0, description="How often a worker looks for orphaned jobs to re-enqueue."
    )
    metrics_flush_seconds: float = Field(
        2.0, gt=0, description="How long a worker buffers metric points before writing them."
    )
    queued_resend_seconds: float = Field(
        30.0,
        gt=0,
        description="A job queued this long without a live claim is sent to the broker again "
        "(a lost message, a broker restarted without persistence); claims are idempotent.",
    )
    db_pool_size: int = Field(10, ge=1, le=200, description="Database connections per process.")
    db_max_overflow: int = Field(
        10, ge=0, le=200, description="Extra connections a process may open under load."
    )
    api_max_in_flight: int = Field(
        64,
        ge=1,
        le=10_000,
        description="Requests the API works on at once; more are answered 503 with "
        "Retry-After at once instead of queueing until they time out.",
    )
    embedded_poll_seconds: float = Field(
        0.05,
        gt=0,
        le=5.0,
        description="How often a worker polls the embedded (SQLite) broker for messages.",
    )
    checkpoint_retention_hours: float = Field(
        24.0,
        ge=0,
        description="Checkpoints of finished jobs, and superseded attempts' files, are deleted "
        "this long after; 0 deletes them at once.",
    )
    idempotency_retention_hours: float = Field(
        24.0, gt=0, description="How long an Idempotency-Key is remembered."
    )
    metric_retention_days: float = Field(
        0.0,
        ge=0,
        description="Metric points, events and log records of jobs finished longer ago than "
        "this are deleted; 0 keeps them forever.",
    )
    max_attempts: int = Field(
        3, ge=1, description="A job orphaned this many times is marked failed, not retried."
    )
    model_cache_size: int = Field(8, ge=1, description="Models kept loaded by the API (LRU).")
    max_samples: int = Field(
        10_000,
        ge=1,
        description="Most samples one query may ask for (`samples`: its `n` or its latents); "
        "more is 422. The queries' own limit, 10,000, still holds above it.",
    )
    max_request_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Larger JSON bodies are refused with 413."
    )
    max_upload_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024,
        description="Larger dataset or model uploads are refused with 413.",
    )
    query_result_ttl_seconds: float = Field(
        3600.0, gt=0, description="How long a heavy query's result is kept and reused."
    )
    device: str = Field("auto", description="Training device for workers: auto, cpu, cuda[:N].")
    torch_threads: int = Field(
        1,
        ge=0,
        description="Threads torch may use in a worker or the API; 0 lets torch decide. One "
        "is fastest for the small networks here and never oversubscribes a shared machine.",
    )
    log_level: str = Field("INFO", description="Log level of the API and the worker.")
    access_log: bool = Field(
        False, description="Log one line per HTTP request (uvicorn's access log); off by default."
    )
    progress_log_seconds: float = Field(
        30.0,
        gt=0,
        description="How often a worker logs a running job's progress (step, ETA, latest "
        "metrics); the lines also go to the job's own log.",
    )
    tensorboard_dir: Path | None = Field(
        None,
        description="Workers also write each job's metric points as TensorBoard event files "
        "under this folder, one run per job id (`tensorboard --logdir` it); unset: they "
        "do not.",
    )
    webhook_max_attempts: int = Field(
        8,
        ge=1,
        le=50,
        description="Tries of a job's webhook before it is given up, with exponential back-off "
        "from 5 s (capped at 10 minutes) between them.",
    )
    webhook_timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="How long one webhook call may take."
    )
    webhook_allow_private_hosts: bool = Field(
        False,
        description="Let webhooks call loopback, link-local and private addresses (a test or a "
        "single-machine setup); off by default, so a job spec cannot aim the service at its "
        "own network.",
    )
    worker_metrics_port: int = Field(
        0,
        ge=0,
        le=65_535,
        description="A worker serves its own Prometheus figures (jobs run, outcomes, "
        "durations) on this port; 0 (the default): it does not.",
    )
    cors_origins: str = Field(
        "",
        max_length=4096,
        description="Origins (scheme://host[:port], comma-separated) whose pages may call the "
        "API from a browser: CORS headers for them, and their state-changing requests (a "
        "query's POST) let through the cross-site guard. Empty (the default): none.",
    )
    auth_required: bool = Field(
        False,
        description="Require an API key (`Authorization: Bearer <key>`) on every request but "
        "/healthz, /readyz and the docs. Off for the embedded `make run` on loopback (one "
        "open tenant, `default`, no rate limits); on in docker-compose.yml.",
    )
    admin_api_key: str | None = Field(
        None,
        min_length=16,
        description="A bootstrap key with the `admin` scope (tenant `admin`): it creates the "
        "first tenants' keys. Compared in constant time, never stored.",
    )
    quota_active_jobs: int = Field(
        20, ge=0, description="Queued plus running jobs a tenant may have at once; 0: no limit."
    )
    quota_storage_bytes: int = Field(
        10 * 1024**3,
        ge=0,
        description="Bytes of models and datasets a tenant may keep; 0: no limit.",
    )
    quota_queries_per_minute: int = Field(
        6000,
        ge=0,
        description="Model queries a tenant may make per minute (a token bucket per API "
        "process, bursts up to a tenth of it); past it, 429 with Retry-After; 0: no limit.",
    )
    # The defaults are ml.core.cost.DEFAULT_MAX_JOB_COST and DEFAULT_MAX_STEP_COST, written
    # out so that reading settings does not import ml (tests/store/test_settings.py).
    max_job_cost: float = Field(
        1e15,
        gt=0,
        description="Bound on a config's estimated compute (ml.core.cost: about the floating "
        "point operations of the whole run, about 14 hours of one CPU core); a config past "
        "it is refused with 422 config_too_expensive. Every default config costs hundreds of "
        "times less.",
    )
    max_step_cost: float = Field(
        2e10,
        gt=0,
        description="Bound on the estimated compute between two stop checks of a run (about "
        "a second of one CPU core), so a cancel or a stop is never stuck behind one huge "
        "step; raise it for GPU workers.",
    )

    @property
    def allowed_origins(self) -> list[str]:
        """CORS_ORIGINS as a list: each origin trimmed, without a trailing slash."""
        found = (o.strip().rstrip("/") for o in self.cors_origins.split(","))
        return [origin for origin in found if origin]

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.var_dir / 'crucible.sqlite').resolve()}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{(self.var_dir / 'broker.sqlite').resolve()}"

    @property
    def resolved_artifact_url(self) -> str:
        if self.artifact_url:
            return self.artifact_url
        return str((self.artifact_dir or self.var_dir / "artifacts").resolve())

    @property
    def embedded(self) -> bool:
        return not self.broker_url


@lru_cache
def get_settings() -> Settings:
    """Cached so every caller shares one; tests call `get_settings.cache_clear()`."""
    settings = Settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    return settings
