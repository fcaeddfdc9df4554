"""Per-tenant quotas: how many jobs may be queued or running at once, how many bytes of
models and datasets a tenant may keep, how many queries it may make a minute.

The QUOTA_* settings give every tenant's defaults; an admin's values for one tenant
(`tenant_quotas`) override them column by column. 0 means no limit. The API checks the job
and storage quotas when something is submitted or uploaded, and the query rate per process
(`api.rate_limit`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import jobs
from store.settings import Settings
from store.tables import DatasetRow, TenantQuota, TrainedModelRow


@dataclass(frozen=True)
class Quotas:
    active_jobs: int
    storage_bytes: int
    queries_per_minute: int


@dataclass(frozen=True)
class Usage:
    active_jobs: int
    storage_bytes: int


class QuotaExceeded(Exception):
    """`code` says which quota; `retry_after` is set where waiting helps (jobs finish)."""

    def __init__(self, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


def defaults(settings: Settings) -> Quotas:
    return Quotas(
        active_jobs=settings.quota_active_jobs,
        storage_bytes=settings.quota_storage_bytes,
        queries_per_minute=settings.quota_queries_per_minute,
    )


def quotas_for(session: Session, tenant: str, settings: Settings) -> Quotas:
    base = defaults(settings)
    row = session.get(TenantQuota, tenant)
    if row is None:
        return base
    return Quotas(
        active_jobs=base.active_jobs if row.active_jobs is None else row.active_jobs,
        storage_bytes=base.storage_bytes if row.storage_bytes is None else row.storage_bytes,
        queries_per_minute=(
            base.queries_per_minute if row.queries_per_minute is None else row.queries_per_minute
        ),
    )


def set_quotas(
    session: Session,
    tenant: str,
    *,
    active_jobs: int | None,
    storage_bytes: int | None,
    queries_per_minute: int | None,
) -> TenantQuota:
    """Set the tenant's own values (None: the deployment's default)."""
    row = session.get(TenantQuota, tenant)
    if row is None:
        row = TenantQuota(tenant=tenant)
        session.add(row)
    row.active_jobs = active_jobs
    row.storage_bytes = storage_bytes
    row.queries_per_minute = queries_per_minute
    session.flush()
    return row


def storage_used(session: Session, tenant: str) -> int:
    models = session.scalar(
        select(func.coalesce(func.sum(TrainedModelRow.size_bytes), 0)).where(
            TrainedModelRow.tenant == tenant
        )
    )
    data = session.scalar(
        select(func.coalesce(func.sum(DatasetRow.size_bytes), 0)).where(DatasetRow.tenant == tenant)
    )
    return int(models or 0) + int(data or 0)


def usage(session: Session, tenant: str) -> Usage:
    return Usage(
        active_jobs=jobs.count_active(session, tenant=tenant),
        storage_bytes=storage_used(session, tenant),
    )


JOB_RETRY_AFTER = 30


def check_submission(session: Session, tenant: str, quotas: Quotas) -> None:
    """A new job may be queued: the tenant is under its active-jobs quota, and not already
    past its storage quota (the job's model would add to it)."""
    if quotas.active_jobs:
        active = jobs.count_active(session, tenant=tenant)
        if active >= quotas.active_jobs:
            raise QuotaExceeded(
                "active_jobs_quota_exceeded",
                f"tenant {tenant!r} has {active} queued or running jobs, its quota; wait for "
                "one to finish, or cancel one",
                retry_after=JOB_RETRY_AFTER,
            )
    check_storage(session, tenant, quotas, adding=0)


def check_storage(session: Session, tenant: str, quotas: Quotas, *, adding: int) -> None:
    if not quotas.storage_bytes:
        return
    used = storage_used(session, tenant)
    if used + adding > quotas.storage_bytes or (adding == 0 and used >= quotas.storage_bytes):
        raise QuotaExceeded(
            "storage_quota_exceeded",
            f"tenant {tenant!r} keeps {used} bytes of models and datasets; adding {adding} "
            f"would pass its quota of {quotas.storage_bytes}; delete datasets, or ask an admin "
            "to raise the quota",
        )


@dataclass(frozen=True)
class TenantSummary:
    """What `GET /v1/tenants/{tenant}` and `crucible-admin quotas show` answer."""

    tenant: str
    quotas: Quotas  # in force
    overrides: dict[str, int | None]  # the tenant's own values (None: the default)
    usage: Usage


def summary(session: Session, tenant: str, settings: Settings) -> TenantSummary:
    own = session.get(TenantQuota, tenant)
    fields = ("active_jobs", "storage_bytes", "queries_per_minute")
    return TenantSummary(
        tenant=tenant,
        quotas=quotas_for(session, tenant, settings),
        overrides={name: getattr(own, name) if own else None for name in fields},
        usage=usage(session, tenant),
    )
