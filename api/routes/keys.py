"""API keys and tenants: create keys (shown once), list and revoke them, set quotas.

Managing keys and quotas takes the `admin` scope; any key may ask who it is
(`GET /v1/keys/current`), and a tenant may read its own quotas and usage.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from api.auth import AdminCaller, AnyCaller, KeyCache, ReadCaller
from api.deps import SessionDep, SettingsDep
from api.errors import ApiError
from api.schemas import (
    CallerPublic,
    KeyCreate,
    KeyCreated,
    KeyPublic,
    KeysPublic,
    QuotaValues,
    TenantPublic,
)
from api.strict_input import StrictRoute
from store import keys, quotas
from store.keys import Scope
from store.tables import ApiKey, utcnow

router = APIRouter(tags=["keys"], route_class=StrictRoute)

KeyId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")]
Tenant = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]


def to_public(row: ApiKey) -> KeyPublic:
    return KeyPublic(
        id=row.id,
        prefix=row.prefix,
        tenant=row.tenant,
        name=row.name,
        scopes=list(row.scopes),
        state=keys.refusal(row) or "active",
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


@router.post(
    "/v1/keys",
    status_code=201,
    summary="Create an API key (admin)",
    operation_id="create_key",
    description="Answers the key itself once, in `key`; only its hash is kept.",
)
def create_key(body: KeyCreate, caller: AdminCaller, session: SessionDep) -> KeyCreated:
    expires = utcnow() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    try:
        new = keys.create_key(
            session,
            tenant=body.tenant,
            scopes=[scope.value for scope in body.scopes],
            name=body.name,
            expires_at=expires,
            created_by=caller.key_id,
        )
    except keys.KeySpecError as exc:
        raise ApiError(422, "validation_error", exc.message, field=exc.field) from None
    session.commit()
    return KeyCreated(**to_public(new.row).model_dump(), key=new.secret)


@router.get("/v1/keys", summary="List API keys (admin)", operation_id="list_keys")
def list_keys(
    _: AdminCaller,
    session: SessionDep,
    tenant: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> KeysPublic:
    rows, count = keys.list_keys(session, tenant=tenant, limit=limit, offset=offset)
    return KeysPublic(data=[to_public(r) for r in rows], count=count, limit=limit, offset=offset)


@router.get(
    "/v1/keys/current",
    summary="The caller: its tenant and scopes",
    operation_id="get_current_key",
)
async def current_key(caller: AnyCaller, settings: SettingsDep) -> CallerPublic:
    return CallerPublic(
        tenant=caller.tenant,
        key_id=caller.key_id,
        scopes=sorted(caller.scopes),
        auth_required=settings.auth_required,
    )


def key_or_404(session: SessionDep, key_id: str) -> ApiKey:
    row = keys.get_key(session, key_id)
    if row is None:
        raise ApiError(404, "key_not_found", "no API key with that id", field="key_id")
    return row


@router.get("/v1/keys/{key_id}", summary="Describe an API key (admin)", operation_id="get_key")
def get_key(key_id: KeyId, _: AdminCaller, session: SessionDep) -> KeyPublic:
    return to_public(key_or_404(session, key_id))


@router.delete(
    "/v1/keys/{key_id}",
    summary="Revoke an API key (admin)",
    operation_id="revoke_key",
    description="The key stops working at once on this API process, and within "
    "a few seconds on the others. Revoking a revoked key changes nothing.",
)
def revoke_key(key_id: KeyId, _: AdminCaller, session: SessionDep, request: Request) -> KeyPublic:
    key_or_404(session, key_id)
    row = keys.revoke_key(session, key_id)
    assert row is not None
    session.commit()
    cache: KeyCache = request.app.state.key_cache
    cache.forget_key(key_id)
    return to_public(row)


def describe_tenant(session: SessionDep, settings: SettingsDep, tenant: str) -> TenantPublic:
    found = quotas.summary(session, tenant, settings)
    return TenantPublic(
        tenant=tenant,
        quotas=dataclasses.asdict(found.quotas),
        overrides=QuotaValues(**found.overrides),
        usage=dataclasses.asdict(found.usage),
    )


@router.get(
    "/v1/tenants/{tenant}",
    summary="A tenant's quotas and usage",
    operation_id="get_tenant",
    description="Admins may read any tenant; other keys their own.",
)
def get_tenant(
    tenant: Tenant, caller: ReadCaller, session: SessionDep, settings: SettingsDep
) -> TenantPublic:
    if tenant != caller.tenant and Scope.admin not in caller.scopes:
        raise ApiError(404, "tenant_not_found", "no such tenant", field="tenant")
    return describe_tenant(session, settings, tenant)


@router.put(
    "/v1/tenants/{tenant}/quotas",
    summary="Set a tenant's quotas (admin)",
    operation_id="set_tenant_quotas",
    description="Each value overrides the deployment's default (QUOTA_* settings) for this "
    "tenant; null puts the default back; 0 means no limit.",
)
def set_quotas(
    tenant: Tenant,
    body: QuotaValues,
    _: AdminCaller,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> TenantPublic:
    quotas.set_quotas(session, tenant, **body.model_dump())
    session.commit()
    # Cached callers carry their tenant's query rate: let them pick up the new one.
    request.app.state.key_cache.clear()
    return describe_tenant(session, settings, tenant)
