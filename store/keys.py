"""API keys: created for a tenant with scopes, shown once, stored hashed, revocable.

A key reads `crk_<8 characters>_<43 characters>`: the first part (the prefix) is kept in
clear to find the key and to tell keys apart in lists; the rest is 256 random bits, so only
its SHA-256 is stored (a slow password hash would add nothing against a secret that cannot
be guessed, and would cost every request). Keys are compared in constant time.

The bootstrap `ADMIN_API_KEY` is not a row: the API compares it with the setting.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from store.db import page
from store.tables import ApiKey, utcnow


class Scope(StrEnum):
    read = "read"  # see the tenant's jobs, metrics, models, names and datasets
    train = "train"  # submit and cancel jobs, upload datasets, import and name models
    query = "query"  # ask the tenant's models queries
    admin = "admin"  # manage keys and quotas of every tenant


ALL_SCOPES = frozenset(Scope)
TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
KEY = re.compile(r"^(?P<prefix>crk_[A-Za-z0-9]{8})_[A-Za-z0-9_-]{43}$")
ADMIN_KEY_ID = "admin"  # what jobs record when the bootstrap key acted


class KeySpecError(ValueError):
    """A tenant name or a scope list that cannot be used."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class NewKey:
    row: ApiKey
    secret: str  # the whole key, shown once


def check_tenant(tenant: str) -> str:
    if not TENANT.match(tenant):
        raise KeySpecError(
            f"{tenant[:64]!r} is not a valid tenant name: 1-64 lowercase letters, digits, "
            "'_' or '-', starting with a letter or digit",
            field="tenant",
        )
    return tenant


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    session: Session,
    *,
    tenant: str,
    scopes: Collection[str],
    name: str | None = None,
    expires_at: datetime | None = None,
    created_by: str | None = None,
) -> NewKey:
    check_tenant(tenant)
    unknown = sorted(set(scopes) - ALL_SCOPES)
    if unknown or not scopes:
        raise KeySpecError(
            f"scopes must be a non-empty subset of {sorted(ALL_SCOPES)}; unknown: {unknown}",
            field="scopes",
        )
    prefix = "crk_" + secrets.token_hex(4)
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        id=uuid.uuid4().hex,
        prefix=prefix,
        key_hash=hash_key(secret),
        tenant=tenant,
        name=name,
        scopes=sorted(set(scopes)),
        created_by=created_by,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return NewKey(row, secret)


def find_key(session: Session, key: str) -> ApiKey | None:
    """The key's row if `key` is one of ours (revoked and expired ones included: the caller
    says why they are refused), else None."""
    match = KEY.match(key)
    if match is None:
        return None
    row = session.query(ApiKey).filter(ApiKey.prefix == match["prefix"]).one_or_none()
    if row is None or not hmac.compare_digest(row.key_hash, hash_key(key)):
        return None
    return row


def refusal(row: ApiKey, now: datetime | None = None) -> str | None:
    """Why a known key may not be used ("revoked", "expired"), or None."""
    now = now or utcnow()
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return None


def get_key(session: Session, key_id: str, *, tenant: str | None = None) -> ApiKey | None:
    row = session.get(ApiKey, key_id)
    if row is None or (tenant is not None and row.tenant != tenant):
        return None
    return row


def list_keys(
    session: Session, *, tenant: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[Sequence[ApiKey], int]:
    filters = [ApiKey.tenant == tenant] if tenant is not None else []
    return page(
        session, ApiKey, filters=filters, newest_first=ApiKey.created_at, limit=limit, offset=offset
    )


def revoke_key(session: Session, key_id: str) -> ApiKey | None:
    row = session.get(ApiKey, key_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row


def touch(session: Session, key_id: str, now: datetime | None = None) -> None:
    row = session.get(ApiKey, key_id)
    if row is not None:
        row.last_used_at = now or utcnow()
        session.flush()
