"""Named models: versions and aliases, the way a model registry works.

`POST /v1/registry/{name}/versions` makes a model that name's next version; `PUT
/v1/registry/{name}/aliases/{alias}` points an alias at a version. Wherever a model id goes in
a path, `name@alias` and `name@N` go too, resolved on every request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from api.auth import ReadCaller, TrainCaller
from api.deps import SessionDep
from api.errors import ApiError
from api.references import resolve_model
from api.schemas import (
    AliasPublic,
    AliasUpdate,
    NamePublic,
    NamesPublic,
    NameSummaryPublic,
    VersionCreate,
    VersionPublic,
)
from api.strict_input import StrictRoute
from store import registry
from store.models import shown
from store.tables import ModelVersion

router = APIRouter(prefix="/v1/registry", tags=["registry"], route_class=StrictRoute)


def valid(check: Callable[[str], str], value: str) -> str:
    """`value` if `check` (a registry name or alias rule) accepts it, else a 422."""
    try:
        return check(value)
    except registry.RegistryError as exc:
        raise ApiError(422, "validation_error", exc.message, field=exc.field) from None


def describe_name(session: Session, name: str, tenant: str) -> NamePublic:
    versions = registry.versions(session, name=name, tenant=tenant)
    if not versions:
        raise name_not_found(name)
    aliases = registry.aliases(session, name=name, tenant=tenant)
    by_version: dict[int, list[str]] = {}
    for alias in aliases:
        by_version.setdefault(alias.version, []).append(alias.alias)
    return NamePublic(
        name=name,
        latest_version=versions[-1].version,
        versions=[version_public(v, by_version.get(v.version, [])) for v in versions],
        aliases={a.alias: a.version for a in aliases},
    )


def name_not_found(name: str) -> ApiError:
    return ApiError(404, "name_not_found", f"no registered model named {shown(name)}", field="name")


def version_public(entry: ModelVersion, aliases: list[str]) -> VersionPublic:
    return VersionPublic(
        name=entry.name,
        version=entry.version,
        model_id=entry.model_id,
        created_at=entry.created_at,
        aliases=aliases,
    )


@router.get("", summary="List registered model names", operation_id="list_registered_names")
def list_names(
    caller: ReadCaller,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> NamesPublic:
    names, count = registry.list_names(session, limit=limit, offset=offset, tenant=caller.tenant)
    data = [
        NameSummaryPublic(name=n.name, latest_version=n.latest_version, versions=n.versions)
        for n in names
    ]
    return NamesPublic(data=data, count=count, limit=limit, offset=offset)


@router.get("/{name}", summary="A name's versions and aliases", operation_id="get_registered_name")
def get_name(name: str, caller: ReadCaller, session: SessionDep) -> NamePublic:
    return describe_name(session, name, caller.tenant)


@router.post(
    "/{name}/versions",
    status_code=201,
    summary="Register a model as the name's next version",
    operation_id="create_model_version",
)
def create_version(
    name: str, body: VersionCreate, caller: TrainCaller, session: SessionDep, response: Response
) -> VersionPublic:
    valid(registry.check_name, name)
    row = resolve_model(session, body.model_id, caller.tenant)
    entry = registry.register_version(session, name=name, model_id=row.id, tenant=caller.tenant)
    session.commit()
    response.headers["Location"] = f"/v1/models/{name}@{entry.version}"
    return version_public(entry, [])


@router.put(
    "/{name}/aliases/{alias}",
    summary="Point an alias at a version",
    operation_id="set_model_alias",
)
def set_alias(
    name: str, alias: str, body: AliasUpdate, caller: TrainCaller, session: SessionDep
) -> AliasPublic:
    valid(registry.check_alias, alias)
    try:
        row = registry.set_alias(
            session, name=name, alias=alias, version=body.version, tenant=caller.tenant
        )
    except registry.NameNotFound:
        raise name_not_found(name) from None
    except registry.RegistryError as exc:
        raise ApiError(422, "unknown_version", exc.message, field=exc.field) from None
    session.commit()
    entry = session.get(ModelVersion, (caller.tenant, name, row.version))
    assert entry is not None
    return AliasPublic(
        name=name,
        alias=alias,
        version=row.version,
        model_id=entry.model_id,
        updated_at=row.updated_at,
    )


@router.delete(
    "/{name}/aliases/{alias}",
    status_code=204,
    summary="Remove an alias",
    operation_id="delete_model_alias",
)
def delete_alias(name: str, alias: str, caller: TrainCaller, session: SessionDep) -> Response:
    if not registry.delete_alias(session, name=name, alias=alias, tenant=caller.tenant):
        raise ApiError(
            404, "alias_not_found", f"{shown(name)} has no alias {shown(alias)}", field="alias"
        )
    session.commit()
    return Response(status_code=204)
