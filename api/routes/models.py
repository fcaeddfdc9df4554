"""Models: trained models as a resource of their own, their files, and model import.

A model is addressed by its id, by the id of the job that made it, or by a registered name
(`name@alias`, `name@N`). Its queries are served by `api.routes.queries`.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import ReadCaller, TrainCaller
from api.deps import ArtifactsDep, ModelCacheDep, SessionDep, SettingsDep
from api.errors import ApiError
from api.limits import check_storage
from api.listing import sort_pattern
from api.references import ModelReference, ResolvedModelDep, resolve_model
from api.routes import jobs as job_routes
from api.schemas import JobContinue, JobPublic, ModelPublic, ModelsPublic, RegisteredAs
from api.strict_input import StrictRoute
from api.uploads import read_upload
from ml.core.errors import ArtifactError
from ml.core.model import import_bytes
from ml.queries import queries_for_kind
from store import jobs, models
from store.artifacts import ArtifactMissing, delete_quietly
from store.tables import Job, ModelAlias, ModelVersion, TrainedModelRow

router = APIRouter(prefix="/v1/models", tags=["models"], route_class=StrictRoute)

MODEL_FILE = "application/octet-stream"


def registered_as(session: Session, model_id: str) -> list[RegisteredAs]:
    entries = session.scalars(select(ModelVersion).where(ModelVersion.model_id == model_id))
    found = []
    for entry in entries:
        aliases = session.scalars(
            select(ModelAlias.alias).where(
                ModelAlias.tenant == entry.tenant,
                ModelAlias.name == entry.name,
                ModelAlias.version == entry.version,
            )
        )
        found.append(RegisteredAs(name=entry.name, version=entry.version, aliases=list(aliases)))
    return found


def to_public(session: Session, row: TrainedModelRow) -> ModelPublic:
    meta = row.model_metadata
    links = {"self": f"/v1/models/{row.id}", "file": f"/v1/models/{row.id}/file"}
    if row.job_id:
        links["job"] = f"/v1/jobs/{row.job_id}"
    return ModelPublic(
        id=row.id,
        job_id=row.job_id,
        kind=row.kind,
        algorithm=row.algorithm,
        queries=list(queries_for_kind(row.kind)),
        shapes=meta.get("shapes", {}),
        config=meta.get("config", {}),
        seed=meta.get("seed"),
        versions=meta.get("versions", {}),
        summary=meta.get("summary", {}),
        metrics_summary=jobs.metric_summary(session, job_id=row.job_id) if row.job_id else {},
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        registered_as=registered_as(session, row.id),
        created_at=row.created_at,
        links=links,
    )


@router.get("", summary="List models", operation_id="list_models")
def list_models(
    caller: ReadCaller,
    session: SessionDep,
    algorithm: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    sort: Annotated[
        str,
        Query(
            pattern=sort_pattern(models.MODEL_SORTS),
            description=f"By {', '.join(models.MODEL_SORTS)}; '-' first for descending.",
        ),
    ] = "-created_at",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> ModelsPublic:
    rows, count = models.list_models(
        session, algorithm=algorithm, kind=kind, sort=sort, limit=limit, offset=offset,
        tenant=caller.tenant,
    )  # fmt: skip
    data = [to_public(session, r) for r in rows]
    return ModelsPublic(data=data, count=count, limit=limit, offset=offset)


@router.post(
    "",
    status_code=201,
    summary="Import a model file",
    operation_id="import_model",
    description="Upload a model file exported by Crucible (`GET /v1/models/{model}/file`). "
    "It is validated (tensors and plain containers only, never unpickled; a known kind whose "
    "state rebuilds) before it is stored.",
)
def import_model(
    file: Annotated[UploadFile, File(description="A Crucible model file (.pt).")],
    caller: TrainCaller,
    session: SessionDep,
    artifacts: ArtifactsDep,
    settings: SettingsDep,
    response: Response,
) -> ModelPublic:
    data = read_upload(file, settings.max_upload_bytes)
    try:
        model = import_bytes(
            data, name=models.shown(file.filename) if file.filename else "the file"
        )
    except ArtifactError as exc:
        raise ApiError(422, "invalid_model_file", exc.message, field="file") from None
    check_storage(session, caller, settings, adding=len(data))
    model_id = models.new_model_id()
    uri = artifacts.put(f"models/{model_id}.pt", data)
    row = models.create_model(
        session,
        model_id=model_id,
        tenant=caller.tenant,
        job_id=None,
        kind=model.kind,
        algorithm=str(model.metadata.get("algorithm", model.kind)),
        metadata=model.metadata,
        artifact_uri=uri,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    session.commit()
    response.headers["Location"] = f"/v1/models/{row.id}"
    return to_public(session, row)


@router.get("/{model}", summary="Describe a model", operation_id="get_model")
def get_model(model: ModelReference, caller: ReadCaller, session: SessionDep) -> ModelPublic:
    return to_public(session, resolve_model(session, model, caller.tenant))


@router.get(
    "/{model}/file",
    summary="Download a model file",
    operation_id="download_model",
    response_class=Response,
    responses={200: {"content": {MODEL_FILE: {}}, "description": "The model file."}},
)
def download_model(_: ReadCaller, row: ResolvedModelDep, artifacts: ArtifactsDep) -> Response:
    try:
        data = artifacts.get(row.artifact_uri)
    except ArtifactMissing:
        raise ApiError(503, "model_unavailable", f"model {row.id}: its file is missing") from None
    return Response(
        data,
        media_type=MODEL_FILE,
        headers={"Content-Disposition": f'attachment; filename="{row.id}.pt"'},
    )


@router.delete(
    "/{model}",
    status_code=204,
    summary="Delete a model and its file",
    operation_id="delete_model",
    description="The job that made it stays. 409 `model_in_use` while it is a registered "
    "version (an alias could point at it) or a queued or running job references it. Other API "
    "processes may still resolve its id for up to 30 s, and then answer 503 "
    "`model_unavailable`.",
)
def delete_model(
    model: ModelReference,
    caller: TrainCaller,
    session: SessionDep,
    artifacts: ArtifactsDep,
    cache: ModelCacheDep,
    request: Request,
) -> Response:
    row = resolve_model(session, model, caller.tenant)
    model_id = row.id
    try:
        uri = models.remove(session, model_id)
    except models.ModelInUse as exc:
        raise ApiError(409, "model_in_use", str(exc)) from None
    session.commit()
    cache.forget(model_id)
    request.app.state.model_rows.forget(model_id)
    delete_quietly(artifacts, uri, f"model {model_id}")
    return Response(status_code=204)


@router.post(
    "/{model}/continue",
    status_code=202,
    summary="Continue a model's training as a new job",
    operation_id="continue_model",
    description="A new job with the model's algorithm, config and seed (changed by the body's "
    "merge patch, typically a larger `total_steps`) that starts from the final state of the "
    "job that made the model: networks, optimisers, replay buffers and random generators, "
    "so it goes on where that run ended. The final state is kept "
    "CHECKPOINT_RETENTION_HOURS after the job ended: 409 `training_state_gone` after that, "
    "or for an imported model. The new job names the old one in `continued_from`.",
)
def continue_model(
    model: ModelReference,
    body: JobContinue,
    caller: TrainCaller,
    session: SessionDep,
    settings: SettingsDep,
    artifacts: ArtifactsDep,
    response: Response,
) -> JobPublic:
    row = resolve_model(session, model, caller.tenant)
    source = jobs.get_job(session, row.job_id) if row.job_id is not None else None
    if source is None or source.checkpoint_uri is None or source.checkpoint_step is None:
        why = (
            "it was imported, with no training state"
            if row.job_id is None
            else f"the final state of job {row.job_id} is no longer kept "
            f"(CHECKPOINT_RETENTION_HOURS={settings.checkpoint_retention_hours:g})"
        )
        raise ApiError(409, "training_state_gone", f"model {row.id} cannot continue: {why}")
    origin, step = source.checkpoint_uri, source.checkpoint_step

    def start_from_its_state(job: Job) -> None:
        """The new job's own copy of the state (retention may delete the original's)."""
        job.checkpoint_uri = artifacts.put(
            f"checkpoints/{job.id}/0-{step}.pt", artifacts.get(origin)
        )
        job.checkpoint_step = step
        job.progress_step = step
        job.continued_from = source.id

    job = job_routes.submit_derived(session, caller, settings, source, body, start_from_its_state)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job_routes.submitted(session, job)
