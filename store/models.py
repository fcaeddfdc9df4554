"""Trained models as a resource: created when a job succeeds (or a model file is imported),
listed, and resolved from whatever reference a client sends.

A reference is a model id, the id of the job that made the model (so clients written before
models had ids of their own keep working), `name@alias` or `name@N` (version N of a
registered name). Names and aliases are resolved on every call, so moving an alias takes
effect at once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.db import page, sort_order
from store.tables import DEFAULT_TENANT, Job, JobStatus, ModelAlias, ModelVersion, TrainedModelRow

REFERENCE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,127})@(?P<tag>[A-Za-z0-9_-]{1,64})$")


class ModelNotFound(LookupError):
    """Nothing answers to the reference; `message` says which part did not match."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelNotReady(LookupError):
    """The reference names a job that has not succeeded (yet), so it has no model."""

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(f"job {job_id} is {status}; only a succeeded job has a model")
        self.job_id = job_id
        self.status = status


def new_model_id() -> str:
    return uuid.uuid4().hex


def create_model(
    session: Session,
    *,
    model_id: str,
    job_id: str | None,
    kind: str,
    algorithm: str,
    metadata: dict[str, Any],
    artifact_uri: str,
    size_bytes: int,
    sha256: str,
    tenant: str = DEFAULT_TENANT,
) -> TrainedModelRow:
    row = TrainedModelRow(
        id=model_id,
        tenant=tenant,
        job_id=job_id,
        kind=kind,
        algorithm=algorithm,
        model_metadata=metadata,
        artifact_uri=artifact_uri,
        size_bytes=size_bytes,
        sha256=sha256,
    )
    session.add(row)
    session.flush()
    return row


def get_model(session: Session, model_id: str) -> TrainedModelRow | None:
    return session.get(TrainedModelRow, model_id)


def model_of_job(session: Session, job_id: str) -> TrainedModelRow | None:
    return session.scalar(select(TrainedModelRow).where(TrainedModelRow.job_id == job_id))


def model_ids_of_jobs(session: Session, job_ids: Sequence[str]) -> dict[str, str]:
    """{job id: model id} for the jobs among `job_ids` that made a model."""
    if not job_ids:
        return {}
    rows = session.execute(
        select(TrainedModelRow.job_id, TrainedModelRow.id).where(
            TrainedModelRow.job_id.in_(job_ids)
        )
    )
    return {job_id: model_id for job_id, model_id in rows if job_id is not None}


def list_models(
    session: Session,
    *,
    algorithm: str | None = None,
    kind: str | None = None,
    sort: str = "-created_at",
    limit: int = 50,
    offset: int = 0,
    tenant: str = DEFAULT_TENANT,
) -> tuple[Sequence[TrainedModelRow], int]:
    """A page of the tenant's models, in the order of `sort` (`MODEL_SORTS`)."""
    filters = [TrainedModelRow.tenant == tenant]
    if algorithm:
        filters.append(TrainedModelRow.algorithm == algorithm)
    if kind:
        filters.append(TrainedModelRow.kind == kind)
    return page(
        session,
        TrainedModelRow,
        filters=filters,
        newest_first=TrainedModelRow.created_at,
        limit=limit,
        offset=offset,
        order=sort_order(sort, MODEL_SORTS),
    )


# What a list of models sorts by: a column's name, "-" before it for descending.
MODEL_SORTS = {
    "created_at": TrainedModelRow.created_at,
    "algorithm": TrainedModelRow.algorithm,
    "kind": TrainedModelRow.kind,
}


def resolve(session: Session, reference: str, *, tenant: str = DEFAULT_TENANT) -> TrainedModelRow:
    """The tenant's model a reference names (see the module docstring), or `ModelNotFound` /
    `ModelNotReady` saying why not. Another tenant's model is not found, exactly as a missing
    one is not."""
    match = REFERENCE.match(reference)
    if match is not None:
        return _resolve_name(session, match["name"], match["tag"], tenant)
    row = get_model(session, reference) or model_of_job(session, reference)
    if row is not None and row.tenant == tenant:
        return row
    job = session.get(Job, reference)
    if job is not None and job.tenant == tenant and job.status != JobStatus.succeeded:
        raise ModelNotReady(job.id, job.status)
    raise ModelNotFound(f"no model with id {shown(reference)}")


def shown(text: str, limit: int = 64) -> str:
    """Client input quoted in a message, cut short: an error must not echo 10,000 characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit] + "...")


def _resolve_name(session: Session, name: str, tag: str, tenant: str) -> TrainedModelRow:
    if tag.isdigit():
        version = int(tag)
    else:
        alias = session.get(ModelAlias, (tenant, name, tag))
        if alias is None:
            raise ModelNotFound(f"{name!r} has no alias {tag!r}")
        version = alias.version
    # A version past any integer column (name@99999999999999999999) is simply not there.
    entry = session.get(ModelVersion, (tenant, name, version)) if version < 2**31 else None
    if entry is None:
        raise ModelNotFound(f"{name!r} has no version {version}")
    row = get_model(session, entry.model_id)
    if row is None:  # cannot happen while the foreign key holds
        raise ModelNotFound(f"{name}@{tag} points at a missing model")
    return row


class ModelInUse(RuntimeError):
    """The model is a registered version, or a queued or running job uses it."""


def remove(session: Session, model_id: str) -> str:
    """Delete the model's row; the URI of its file, for the caller to delete after the
    commit. `ModelInUse` names what still needs it: registered versions (unregister them, or
    an alias would point at nothing) and active jobs that reference it."""
    row = session.get(TrainedModelRow, model_id)
    if row is None:
        raise ModelNotFound(f"no model with id {shown(model_id)}")
    versions = session.execute(
        select(ModelVersion.name, ModelVersion.version).where(ModelVersion.model_id == model_id)
    ).all()
    if versions:
        names = ", ".join(f"{name}@{version}" for name, version in versions[:5])
        raise ModelInUse(f"model {model_id} is registered as {names}")
    for job_id, refs in session.execute(
        select(Job.id, Job.model_refs).where(
            Job.tenant == row.tenant,
            Job.status.in_((JobStatus.queued.value, JobStatus.running.value)),
            Job.model_refs.is_not(None),
        )
    ).all():
        if model_id in (refs or {}).values():
            raise ModelInUse(f"model {model_id} is used by job {job_id}, which has not ended")
    uri = row.artifact_uri
    session.delete(row)
    return uri
