"""Datasets: upload (validated by `ml.data` before anything is stored), list, inspect, delete.

The same content uploaded twice is stored once: the second upload answers 200 with the
existing dataset. A dataset a queued or running job uses cannot be deleted (409). Built-in
datasets (those an algorithm's config offers by `kind`, such as the GAN's ring) are listed
beside uploaded ones, with the reference a job config takes for each.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, get_args

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import ml
from api.auth import Caller, ReadCaller, TrainCaller
from api.deps import ArtifactsDep, IdempotencyKeyHeader, SessionDep, SettingsDep
from api.errors import ApiError
from api.limits import check_storage
from api.schemas import DatasetPublic, DatasetsPublic
from api.strict_input import StrictRoute
from api.uploads import read_upload
from ml.core.errors import DatasetError
from ml.data import DATASET_KINDS, describe_kind, parse_upload, to_npz
from store import datasets, idempotency
from store.artifacts import ArtifactStore
from store.models import shown
from store.settings import Settings
from store.tables import DatasetRow

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], route_class=StrictRoute)

BUILTIN_PREFIX = "builtin:"


# -- built-in datasets ----------------------------------------------------------------------
def _spec_classes(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic classes a config field's type admits (through unions and Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [c for arg in get_args(annotation) for c in _spec_classes(arg)]


def builtin_datasets() -> list[DatasetPublic]:
    """One entry per built-in dataset spec of any algorithm's `dataset` field."""
    found: dict[str, DatasetPublic] = {}
    for algorithm in ml.ALGORITHMS.values():
        field = algorithm.config.model_fields.get("dataset")
        if field is None:
            continue
        for spec in _spec_classes(field.annotation):
            tag = get_args(spec.model_fields["kind"].annotation)
            if not tag or tag[0] == "uploaded":
                continue
            entry = found.setdefault(tag[0], _builtin_entry(tag[0], spec, algorithm))
            entry.summary["algorithms"] = sorted({*entry.summary["algorithms"], algorithm.name})
    return list(found.values())


def _builtin_entry(tag: str, spec: type[BaseModel], algorithm: ml.Algorithm[Any]) -> DatasetPublic:
    return DatasetPublic(
        id=f"{BUILTIN_PREFIX}{tag}",
        name=tag,
        kind=algorithm.dataset_kinds[0] if algorithm.dataset_kinds else "samples",
        builtin=True,
        rows=None,
        size_bytes=None,
        sha256=None,
        summary={
            "description": (spec.__doc__ or "").strip(),
            "algorithms": [],
            "schema": spec.model_json_schema(),
        },
        created_at=None,
        reference={"kind": tag},
    )


# -- uploaded datasets -----------------------------------------------------------------------
def to_public(session: Session, row: DatasetRow, *, used_by: bool = False) -> DatasetPublic:
    return DatasetPublic(
        id=row.id,
        name=row.name,
        kind=row.kind,
        rows=row.rows,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        summary=row.summary,
        used_by=datasets.jobs_using(session, dataset_id=row.id) if used_by else [],
        created_at=row.created_at,
        reference={"kind": "uploaded", "id": row.id},
    )


def dataset_or_404(session: Session, dataset_id: str, tenant: str) -> DatasetRow:
    row = datasets.get_dataset(session, dataset_id, tenant=tenant)
    if row is None:
        raise dataset_not_found(dataset_id)
    return row


def dataset_not_found(dataset_id: str) -> ApiError:
    return ApiError(404, "dataset_not_found", f"no dataset with id {shown(dataset_id)}", field="id")


@router.post(
    "",
    status_code=201,
    summary="Upload a dataset",
    operation_id="upload_dataset",
    description="Multipart: a `file` part, a `kind` field ("
    + ", ".join(DATASET_KINDS)
    + ") and an optional `name`. Answers 201 with the new dataset, or 200 with the existing "
    "one when the same content was uploaded before. File formats:\n\n"
    + "\n".join(f"- **{kind}**: {describe_kind(kind)}" for kind in DATASET_KINDS),
    responses={200: {"model": DatasetPublic, "description": "Already uploaded."}},
)
def upload_dataset(
    file: Annotated[UploadFile, File(description="The data file.")],
    kind: Annotated[str, Form(description="samples, transitions, trajectories or mdp.")],
    caller: TrainCaller,
    session: SessionDep,
    artifacts: ArtifactsDep,
    settings: SettingsDep,
    response: Response,
    name: Annotated[str | None, Form(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> DatasetPublic:
    if kind not in DATASET_KINDS:
        raise ApiError(
            422,
            "unknown_dataset_kind",
            f"unknown dataset kind {shown(kind)}; choose from {', '.join(DATASET_KINDS)}",
            field="kind",
        )
    data = read_upload(file, settings.max_upload_bytes)
    digest = hashlib.sha256(data).hexdigest()
    request = idempotency.request_hash({"kind": kind, "name": name, "sha256": digest})
    if idempotency_key is not None:
        try:
            replay = idempotency.find(
                session,
                scope="datasets",
                key=idempotency_key,
                digest=request,
                tenant=caller.tenant,
            )
        except idempotency.KeyReused as exc:
            raise ApiError(
                409, "idempotency_key_reused", str(exc), field="Idempotency-Key"
            ) from None
        if replay is not None:
            response.status_code = 200
            response.headers["Idempotent-Replayed"] = "true"
            row = dataset_or_404(session, replay.resource_id, caller.tenant)
            return to_public(session, row, used_by=True)
    row, created = store_dataset(
        session,
        artifacts,
        settings,
        caller,
        kind=kind,
        data=data,
        name=name,
        remember=None if idempotency_key is None else (idempotency_key, request),
    )
    if not created:
        response.status_code = 200
        return to_public(session, row, used_by=True)
    response.headers["Location"] = f"/v1/datasets/{row.id}"
    return to_public(session, row)


def store_dataset(
    session: Session,
    artifacts: ArtifactStore,
    settings: Settings,
    caller: Caller,
    *,
    kind: str,
    data: bytes,
    name: str | None,
    remember: tuple[str, str] | None = None,
) -> tuple[DatasetRow, bool]:
    """Validate and store a dataset file for the caller's tenant, once per content: the row,
    and whether it is new (False: the same content was stored before). `remember` is an
    (Idempotency-Key, request digest) to record with it. Used by uploads and by queries that
    save their answer (`rollouts`)."""
    digest = hashlib.sha256(data).hexdigest()
    existing = datasets.find_by_digest(session, kind=kind, sha256=digest, tenant=caller.tenant)
    if existing is not None:
        return existing, False
    try:
        dataset = parse_upload(kind, data, max_bytes=settings.max_upload_bytes)
    except DatasetError as exc:
        raise ApiError(422, exc.code, exc.message, field=exc.field or "file") from None
    check_storage(session, caller, settings, adding=len(data))
    dataset_id = datasets.new_dataset_id()
    uri = artifacts.put(f"datasets/{dataset_id}.npz", to_npz(dataset))
    try:
        row = datasets.create_dataset(
            session,
            dataset_id=dataset_id,
            tenant=caller.tenant,
            name=name,
            kind=kind,
            sha256=digest,
            size_bytes=len(data),
            rows=int(dataset.summary.get("rows", 0)),
            summary=dataset.summary,
            artifact_uri=uri,
        )
        if remember is not None:
            idempotency.remember(
                session,
                scope="datasets",
                key=remember[0],
                digest=remember[1],
                resource_id=row.id,
                tenant=caller.tenant,
            )
        session.commit()
    except IntegrityError:  # the same content, stored at the same moment, won the race
        session.rollback()
        artifacts.delete(uri)
        existing = datasets.find_by_digest(session, kind=kind, sha256=digest, tenant=caller.tenant)
        if existing is None:
            raise
        return existing, False
    return row, True


@router.get("", summary="List datasets, built-in and uploaded", operation_id="list_datasets")
def list_datasets(
    caller: ReadCaller,
    session: SessionDep,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    builtin: Annotated[bool, Query(description="Include built-in datasets.")] = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> DatasetsPublic:
    builtins = [
        d
        for d in (builtin_datasets() if builtin else [])
        if (kind is None or d.kind == kind) and (name is None or d.name == name)
    ]
    first = builtins[offset : offset + limit]
    rows, count = datasets.list_datasets(
        session,
        kind=kind,
        name=name,
        limit=limit - len(first) or 1,
        offset=max(0, offset - len(builtins)),
        tenant=caller.tenant,
    )
    uploaded = [to_public(session, r) for r in rows][: limit - len(first)]
    return DatasetsPublic(
        data=first + uploaded, count=len(builtins) + count, limit=limit, offset=offset
    )


@router.get("/{dataset_id}", summary="Describe a dataset", operation_id="get_dataset")
def get_dataset(dataset_id: str, caller: ReadCaller, session: SessionDep) -> DatasetPublic:
    if dataset_id.startswith(BUILTIN_PREFIX):
        for entry in builtin_datasets():
            if entry.id == dataset_id:
                return entry
    return to_public(session, dataset_or_404(session, dataset_id, caller.tenant), used_by=True)


@router.delete(
    "/{dataset_id}",
    status_code=204,
    summary="Delete an uploaded dataset",
    operation_id="delete_dataset",
    description="409 while a queued or running job uses it.",
)
def delete_dataset(
    dataset_id: str, caller: TrainCaller, session: SessionDep, artifacts: ArtifactsDep
) -> Response:
    if dataset_id.startswith(BUILTIN_PREFIX):
        raise ApiError(409, "builtin_dataset", "built-in datasets cannot be deleted", field="id")
    dataset_or_404(session, dataset_id, caller.tenant)
    try:
        row = datasets.delete_dataset(session, dataset_id=dataset_id)
    except datasets.DatasetInUse as exc:
        raise ApiError(409, "dataset_in_use", str(exc), field="id") from None
    if row is None:
        raise dataset_not_found(dataset_id)
    session.commit()
    artifacts.delete(row.artifact_uri)
    return Response(status_code=204)
