"""Jobs: submit, list, inspect, cancel, resume, clone and delete."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, StringConstraints, ValidationError
from sqlalchemy.exc import IntegrityError

import ml
from api.auth import Caller, ReadCaller, TrainCaller
from api.deps import ArtifactsDep, IdempotencyKeyHeader, ModelCacheDep, SessionDep, SettingsDep
from api.errors import ApiError, from_validation
from api.limits import check_submission
from api.listing import sort_pattern, tag_filters
from api.schemas import (
    JobClone,
    JobContinue,
    JobCreate,
    JobPublic,
    JobsPublic,
    Progress,
    WebhookPublic,
)
from api.strict_input import StrictRoute, validate_strictly
from ml.core.references import referenced_models
from ml.data import UploadedDataset
from store import datasets, idempotency, jobs, models, registry
from store.artifacts import delete_quietly
from store.queue import Wait, waits
from store.tables import DatasetRow, Job, JobKind, JobStatus
from worker.enqueue import send

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=StrictRoute)
log = logging.getLogger(__name__)


# Shown as the table has them; the webhook is shown without its secret.
JOB_COLUMNS = [
    name for name in JobPublic.model_fields if name in Job.__table__.columns and name != "webhook"
]


def webhook_public(job: Job) -> WebhookPublic | None:
    if job.webhook is None:
        return None
    return WebhookPublic(
        url=job.webhook["url"],
        status=job.webhook_status or "waiting",  # type: ignore[arg-type]
        attempts=job.webhook_attempts,
        last_error=job.webhook_last_error,
    )


def to_public(job: Job, model_id: str | None, wait: Wait | None = None) -> JobPublic:
    total = job.progress_total
    fraction = min(1.0, job.progress_step / total) if total else None
    if job.status == JobStatus.succeeded:
        fraction = 1.0
    links = {
        "self": f"/v1/jobs/{job.id}",
        "metrics": f"/v1/jobs/{job.id}/metrics",
        "events": f"/v1/jobs/{job.id}/events",
        "logs": f"/v1/jobs/{job.id}/logs",
    }
    if model_id is not None:
        links["model"] = f"/v1/models/{model_id}"
    # Every column the public schema shares with the table, plus what is derived.
    columns = {name: getattr(job, name) for name in JOB_COLUMNS}
    eta = jobs.eta_seconds(job)
    progress = Progress(
        step=job.progress_step,
        total=total,
        fraction=None if fraction is None else round(fraction, 4),
        eta_seconds=None if eta is None else round(eta),  # people read seconds, not 1e-6
    )
    return JobPublic(
        **columns,
        progress=progress,
        links=links,
        model_id=model_id,
        webhook=webhook_public(job),
        queue_position=wait.position if wait else None,
        estimated_start_seconds=None
        if wait is None or wait.seconds is None
        else round(wait.seconds),
    )


def load_job(session: SessionDep, job_id: str, caller: Caller) -> Job:
    """The caller's tenant's training job, or 404 (another tenant's job is not found either)."""
    try:
        job = jobs.get_job(session, job_id, tenant=caller.tenant)
    except jobs.JobNotFound:
        job = None
    if job is None or job.kind != JobKind.train:
        raise ApiError(404, "job_not_found", f"no job with id {models.shown(job_id)}", field="id")
    return job


def public(session: SessionDep, job: Job) -> JobPublic:
    row = models.model_of_job(session, job.id)
    return to_public(job, row.id if row is not None else None, waits(session, [job]).get(job.id))


def uploaded_datasets(config: BaseModel) -> list[UploadedDataset]:
    """Every uploaded-dataset reference in a parsed config, however deep."""
    found: list[UploadedDataset] = []
    for value in config.__dict__.values():
        if isinstance(value, UploadedDataset):
            found.append(value)
        elif isinstance(value, BaseModel):
            found.extend(uploaded_datasets(value))
    return found


def check_datasets(
    session: SessionDep, algorithm: ml.Algorithm[Any], config: BaseModel, tenant: str
) -> list[DatasetRow]:
    """The uploaded datasets the config names, each checked to be the tenant's and of a kind
    the algorithm accepts."""
    found = []
    for ref in uploaded_datasets(config):
        row = datasets.get_dataset(session, ref.id, tenant=tenant)
        if row is None:
            raise ApiError(
                422,
                "dataset_not_found",
                f"no dataset with id {models.shown(ref.id)}",
                field="config.dataset.id",
            )
        if row.kind not in algorithm.dataset_kinds:
            accepted = ", ".join(algorithm.dataset_kinds) or "no uploaded data"
            raise ApiError(
                422,
                "dataset_kind_mismatch",
                f"dataset {ref.id} is a {row.kind} dataset; {algorithm.name} takes {accepted}",
                field="config.dataset.id",
            )
        found.append(row)
    return found


def check_register(body: JobCreate) -> dict[str, Any] | None:
    if body.register_as is None:
        return None
    try:
        registry.check_name(body.register_as.name)
        for alias in body.register_as.aliases:
            registry.check_alias(alias)
    except registry.RegistryError as exc:
        raise ApiError(
            422, "validation_error", exc.message, field=f"register_as.{exc.field}"
        ) from None
    return body.register_as.model_dump()


@dataclass(frozen=True)
class Spec:
    """A submission checked against its algorithm: what `create_job` stores."""

    algorithm: ml.Algorithm[Any]
    config: dict[str, Any]
    register_as: dict[str, Any] | None
    dataset_ids: list[str]
    model_refs: dict[str, str]


def check_spec(session: SessionDep, body: JobCreate, tenant: str, settings: SettingsDep) -> Spec:
    """The submission validated, or the 422 that names what is wrong."""
    if body.algorithm not in ml.ALGORITHMS:
        known = ", ".join(sorted(ml.ALGORITHMS))
        raise ApiError(
            422,
            "unknown_algorithm",
            f"unknown algorithm {body.algorithm!r}; known: {known}",
            field="algorithm",
        )
    algorithm = ml.ALGORITHMS[body.algorithm]
    try:
        config = validate_strictly(algorithm.config, body.config)
    except ValidationError as exc:
        raise from_validation(list(exc.errors()), prefix="config", body=body.config) from None
    except ml.ConfigError as exc:
        raise config_error(exc) from None
    if body.webhook is not None:
        check_webhook(body.webhook.url, settings)
    rows = check_datasets(session, algorithm, config, tenant)
    try:  # one request cannot buy unbounded compute
        ml.check_cost(
            algorithm,
            config,
            max_cost=settings.max_job_cost,
            max_step_cost=settings.max_step_cost,
            datasets={row.id: {**row.summary, "kind": row.kind} for row in rows},
        )
    except ml.ConfigError as exc:
        raise config_error(exc) from None
    return Spec(
        algorithm=algorithm,
        config=config.model_dump(mode="json"),
        register_as=check_register(body),
        dataset_ids=[row.id for row in rows],
        model_refs=check_models(session, config, tenant),
    )


def check_webhook(url: str, settings: SettingsDep) -> None:
    """Refuse at once a webhook aimed at loopback or a private address written as such; a
    name is resolved and checked again at each call (`worker.webhooks`)."""
    if settings.webhook_allow_private_hosts:
        return
    host = (urlsplit(url).hostname or "").lower()
    try:
        private = not ipaddress.ip_address(host).is_global
    except ValueError:
        private = host == "localhost" or host.endswith(".localhost") or not host
    if private:
        raise ApiError(
            422,
            "invalid_webhook",
            f"webhook host {models.shown(host)!r} is not a public address (the server's "
            "WEBHOOK_ALLOW_PRIVATE_HOSTS setting allows it)",
            field="webhook.url",
        )


def check_models(session: SessionDep, config: BaseModel, tenant: str) -> dict[str, str]:
    """{reference: model id} of the finished models the config names, each the tenant's and
    ready; the ids are pinned now, so moving an alias later does not change the job."""
    pinned: dict[str, str] = {}
    for path, reference in referenced_models(config):
        try:
            pinned[reference] = models.resolve(session, reference, tenant=tenant).id
        except models.ModelNotReady as exc:
            raise ApiError(422, "model_not_ready", str(exc), field=f"config.{path}") from None
        except models.ModelNotFound as exc:
            raise ApiError(422, "model_not_found", exc.message, field=f"config.{path}") from None
    return pinned


def config_error(exc: ml.ConfigError) -> ApiError:
    field = f"config.{exc.field}" if exc.field else "config"
    return ApiError(422, exc.code, exc.message, field=field)


def replayed(session: SessionDep, key: str | None, digest: str, tenant: str) -> Job | None:
    """The job an earlier request of the tenant's with this Idempotency-Key created, if any."""
    if key is None:
        return None
    try:
        replay = idempotency.find(session, scope="jobs", key=key, digest=digest, tenant=tenant)
    except idempotency.KeyReused as exc:
        raise ApiError(409, "idempotency_key_reused", str(exc), field="Idempotency-Key") from None
    return jobs.get_job(session, replay.resource_id) if replay is not None else None


def enqueue_after_commit(session: SessionDep, job: Job, settings: SettingsDep) -> None:
    """Hand the committed job to the broker. Nothing here may fail the response: the job
    exists, and a worker's sweeper sends any job left queued without a live claim."""
    try:
        send(session, job.id, job.queue, settings)
        session.refresh(job)
    except Exception:
        log.warning("job %s: created, but not yet handed to the broker", job.id, exc_info=True)
        session.rollback()


@router.post(
    "",
    status_code=202,
    summary="Submit a training job",
    operation_id="create_job",
    description="Answers 202 with the job; with an `Idempotency-Key` header, a retry answers "
    "the job the first request created (header `Idempotent-Replayed: true`). An error "
    "response means no job was created.",
)
def create_job(
    body: JobCreate,
    caller: TrainCaller,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JobPublic:
    spec = check_spec(session, body, caller.tenant, settings)
    digest = idempotency.request_hash(body.model_dump(mode="json"))
    job = replayed(session, idempotency_key, digest, caller.tenant)
    if job is None:
        check_submission(session, caller, settings)
        try:
            job = store_job(session, body, spec, idempotency_key, digest, caller)
        except IntegrityError:  # a twin request with the same key won the race
            session.rollback()
            job = replayed(session, idempotency_key, digest, caller.tenant)
            if job is None:
                raise
        else:
            enqueue_after_commit(session, job, settings)
            response.headers["Location"] = f"/v1/jobs/{job.id}"
            return submitted(session, job)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    response.headers["Idempotent-Replayed"] = "true"
    return public(session, job)


def store_job(
    session: SessionDep,
    body: JobCreate,
    spec: Spec,
    key: str | None,
    digest: str,
    caller: Caller,
    before_commit: Callable[[Job], None] | None = None,
) -> Job:
    """Create the job, its dataset links and its idempotency record in one transaction."""
    job = jobs.create_job(
        session,
        tenant=caller.tenant,
        submitted_by=caller.key_id,
        algorithm=spec.algorithm.name,
        config=spec.config,
        seed=body.seed,
        queue=spec.algorithm.queue,
        name=body.name,
        tags=body.tags,
        register_as=spec.register_as,
        max_runtime_seconds=body.max_runtime_seconds,
        model_refs=spec.model_refs,
        webhook=body.webhook.model_dump() if body.webhook else None,
    )
    datasets.link_jobs(session, job_id=job.id, dataset_ids=spec.dataset_ids)
    if key is not None:
        idempotency.remember(
            session,
            scope="jobs",
            key=key,
            digest=digest,
            resource_id=job.id,
            tenant=caller.tenant,
        )
    if before_commit is not None:
        before_commit(job)
    session.commit()  # the worker must find the row before it gets the message
    return job


@router.get("", summary="List training jobs", operation_id="list_jobs")
def list_jobs(
    caller: ReadCaller,
    session: SessionDep,
    status: Annotated[JobStatus | None, Query()] = None,
    algorithm: Annotated[str | None, Query(max_length=64)] = None,
    name: Annotated[str | None, Query(max_length=200, description="Jobs of this name.")] = None,
    tag: Annotated[
        list[Annotated[str, StringConstraints(max_length=200)]] | None,
        Query(
            max_length=16,
            description="Jobs carrying a tag: `key=value`, or `key` for any value; repeat "
            "for several (all must match).",
        ),
    ] = None,
    sort: Annotated[
        str,
        Query(
            pattern=sort_pattern(jobs.JOB_SORTS),
            description=f"By {', '.join(jobs.JOB_SORTS)}; '-' first for descending.",
        ),
    ] = "-created_at",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> JobsPublic:
    rows, count = jobs.list_jobs(
        session,
        status=status.value if status else None,
        algorithm=algorithm,
        name=name,
        tags=tag_filters(tag),
        sort=sort,
        limit=limit,
        offset=offset,
        tenant=caller.tenant,
    )
    model_ids = models.model_ids_of_jobs(session, [j.id for j in rows])
    queued = waits(session, rows)
    data = [to_public(j, model_ids.get(j.id), queued.get(j.id)) for j in rows]
    return JobsPublic(data=data, count=count, limit=limit, offset=offset)


@router.get("/{job_id}", summary="Describe a job", operation_id="get_job")
def get_job(
    job_id: str, caller: ReadCaller, session: SessionDep, cache: ModelCacheDep
) -> JobPublic:
    job = load_job(session, job_id, caller)
    row = models.model_of_job(session, job.id)
    if row is not None:
        cache.warm(row.id, row.artifact_uri)  # the client's next call is likely a query
    return to_public(job, row.id if row is not None else None, waits(session, [job]).get(job.id))


@router.post("/{job_id}/cancel", status_code=202, summary="Cancel a job", operation_id="cancel_job")
def cancel_job(job_id: str, caller: TrainCaller, session: SessionDep) -> JobPublic:
    load_job(session, job_id, caller)
    try:
        job = jobs.request_cancel(session, job_id=job_id, cancelled_by=caller.key_id)
    except jobs.InvalidTransition as exc:
        raise ApiError(409, "job_finished", str(exc)) from None
    session.commit()
    return public(session, job)


@router.post(
    "/{job_id}/resume",
    status_code=202,
    summary="Resume a cancelled job from its checkpoint",
    operation_id="resume_job",
    description="A cancelled job, or one stopped by its time limit, goes back to the queue and "
    "goes on from its last checkpoint (kept for CHECKPOINT_RETENTION_HOURS after it ended), "
    "without a time limit. 409 `job_not_resumable` otherwise.",
)
def resume_job(
    job_id: str, caller: TrainCaller, session: SessionDep, settings: SettingsDep
) -> JobPublic:
    load_job(session, job_id, caller)
    check_submission(session, caller, settings)
    try:
        job = jobs.resume(session, job_id=job_id)
    except jobs.InvalidTransition as exc:
        raise ApiError(409, "job_not_resumable", str(exc)) from None
    session.commit()
    enqueue_after_commit(session, job, settings)
    return public(session, job)


@router.post(
    "/{job_id}/clone",
    status_code=202,
    summary="Submit a copy of a job",
    operation_id="clone_job",
    description="A new job with the same algorithm, config, seed, name, tags and registration, "
    "changed by the body: `config` is a JSON merge patch (RFC 7396) onto the job's config, "
    "the other fields replace the job's. Checked as a new submission.",
)
def clone_job(
    job_id: str,
    body: JobClone,
    caller: TrainCaller,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> JobPublic:
    original = load_job(session, job_id, caller)
    job = submit_derived(session, caller, settings, original, body)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return submitted(session, job)


def submitted(session: SessionDep, job: Job) -> JobPublic:
    """A job just created: no model yet, and its place in its queue."""
    return to_public(job, None, waits(session, [job]).get(job.id))


def submit_derived(
    session: SessionDep,
    caller: Caller,
    settings: SettingsDep,
    original: Job,
    changes: JobContinue,
    before_commit: Callable[[Job], None] | None = None,
) -> Job:
    """A new job from `original`'s spec with `changes` (see `clone_job`), checked as a new
    submission; `before_commit` may complete its row (a checkpoint to start from)."""
    # A continued run keeps its seed: its random generators' states are in its checkpoint.
    new_seed = changes.seed if isinstance(changes, JobClone) else None
    body = JobCreate(
        algorithm=original.algorithm,
        config=merge_patch(original.config, changes.config or {}),
        seed=original.seed if new_seed is None else new_seed,
        name=changes.name if "name" in changes.model_fields_set else original.name,
        tags=original.tags if changes.tags is None else changes.tags,
        register_as=changes.register_as,
        max_runtime_seconds=changes.max_runtime_seconds or original.max_runtime_seconds,
        webhook=changes.webhook,
    )
    spec = check_spec(session, body, caller.tenant, settings)
    check_submission(session, caller, settings)
    digest = idempotency.request_hash(body.model_dump(mode="json"))
    job = store_job(session, body, spec, None, digest, caller, before_commit)
    enqueue_after_commit(session, job, settings)
    return job


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge key by key, null deletes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


@router.delete(
    "/{job_id}",
    status_code=204,
    summary="Delete a finished job",
    operation_id="delete_job",
    description="Deletes the job with its metric points, events, logs and checkpoint files. "
    "The model it made stays (delete it with DELETE /v1/models/{model}). 409 `job_active` "
    "while it is queued or running: cancel it first.",
)
def delete_job(
    job_id: str, caller: TrainCaller, session: SessionDep, artifacts: ArtifactsDep
) -> Response:
    load_job(session, job_id, caller)
    try:
        uris = jobs.remove(session, job_id=job_id)
    except jobs.JobActive as exc:
        raise ApiError(409, "job_active", str(exc)) from None
    session.commit()
    for uri in uris:
        delete_quietly(artifacts, uri, f"job {job_id}")
    return Response(status_code=204)
