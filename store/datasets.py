"""Uploaded datasets: stored once per content, listed, linked to the jobs that use them.

The validation itself is `ml.data`'s (the same checks a notebook user gets); this module
records what passed it. A dataset that a queued or running job uses cannot be deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from store.db import page
from store.tables import DEFAULT_TENANT, DatasetRow, Job, JobDataset, JobStatus

ACTIVE = (JobStatus.queued.value, JobStatus.running.value)


class DatasetInUse(RuntimeError):
    def __init__(self, dataset_id: str, job_ids: Sequence[str]) -> None:
        shown = ", ".join(job_ids[:5]) + (" ..." if len(job_ids) > 5 else "")
        super().__init__(f"dataset {dataset_id} is used by unfinished jobs: {shown}")
        self.job_ids = list(job_ids)


def new_dataset_id() -> str:
    return uuid.uuid4().hex


def find_by_digest(
    session: Session, *, kind: str, sha256: str, tenant: str = DEFAULT_TENANT
) -> DatasetRow | None:
    return session.scalar(
        select(DatasetRow).where(
            DatasetRow.tenant == tenant, DatasetRow.kind == kind, DatasetRow.sha256 == sha256
        )
    )


def create_dataset(
    session: Session,
    *,
    dataset_id: str,
    name: str | None,
    kind: str,
    sha256: str,
    size_bytes: int,
    rows: int,
    summary: dict[str, Any],
    artifact_uri: str,
    tenant: str = DEFAULT_TENANT,
) -> DatasetRow:
    row = DatasetRow(
        id=dataset_id,
        tenant=tenant,
        name=name,
        kind=kind,
        sha256=sha256,
        size_bytes=size_bytes,
        rows=rows,
        summary=summary,
        artifact_uri=artifact_uri,
    )
    session.add(row)
    session.flush()
    return row


def get_dataset(
    session: Session, dataset_id: str, *, tenant: str | None = None
) -> DatasetRow | None:
    """The dataset, or None if there is none or (`tenant` given) it is another tenant's."""
    row = session.get(DatasetRow, dataset_id)
    if row is None or (tenant is not None and row.tenant != tenant):
        return None
    return row


def list_datasets(
    session: Session,
    *,
    kind: str | None = None,
    name: str | None = None,
    limit: int = 50,
    offset: int = 0,
    tenant: str = DEFAULT_TENANT,
) -> tuple[Sequence[DatasetRow], int]:
    filters = [DatasetRow.tenant == tenant]
    if kind:
        filters.append(DatasetRow.kind == kind)
    if name:
        filters.append(DatasetRow.name == name)
    return page(
        session,
        DatasetRow,
        filters=filters,
        newest_first=DatasetRow.created_at,
        limit=limit,
        offset=offset,
    )


def link_jobs(session: Session, *, job_id: str, dataset_ids: Iterable[str]) -> None:
    rows = [{"job_id": job_id, "dataset_id": d} for d in sorted(set(dataset_ids))]
    if rows:
        session.execute(insert(JobDataset), rows)


def jobs_using(session: Session, *, dataset_id: str) -> list[str]:
    return list(
        session.scalars(
            select(JobDataset.job_id)
            .where(JobDataset.dataset_id == dataset_id)
            .order_by(JobDataset.job_id)
        )
    )


def datasets_of_job(session: Session, *, job_id: str) -> Sequence[DatasetRow]:
    return session.scalars(
        select(DatasetRow)
        .join(JobDataset, JobDataset.dataset_id == DatasetRow.id)
        .where(JobDataset.job_id == job_id)
    ).all()


def delete_dataset(session: Session, *, dataset_id: str) -> DatasetRow | None:
    """Delete the row (the caller deletes the artifact after the commit); `DatasetInUse`
    while an unfinished job uses it. Links of finished jobs go with it."""
    row = get_dataset(session, dataset_id)
    if row is None:
        return None
    active = session.scalars(
        select(Job.id)
        .join(JobDataset, JobDataset.job_id == Job.id)
        .where(JobDataset.dataset_id == dataset_id, Job.status.in_(ACTIVE))
        .with_for_update()
    ).all()
    if active:
        raise DatasetInUse(dataset_id, list(active))
    session.execute(delete(JobDataset).where(JobDataset.dataset_id == dataset_id))
    session.delete(row)
    session.flush()
    return row
