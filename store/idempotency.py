"""Idempotency keys: a client that retries a submission with the same `Idempotency-Key` gets
the resource its first attempt created, never a second one.

The key is recorded in the transaction that creates the resource, so either both exist or
neither does; two requests racing with one key meet the primary key, and the loser reads
the winner's record. A key reused for a different request is a conflict, not a replay.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from store.tables import DEFAULT_TENANT, IdempotencyKey


class KeyReused(ValueError):
    """The key was used before for a different request."""


@dataclass(frozen=True)
class Replay:
    resource_id: str


def request_hash(payload: Any) -> str:
    """A digest of what was asked, to tell a retry from a different request."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def find(
    session: Session, *, scope: str, key: str, digest: str, tenant: str = DEFAULT_TENANT
) -> Replay | None:
    """The resource the tenant's key already made, if any; `KeyReused` if it was made for
    another request. Keys are per tenant: two tenants may choose the same one."""
    row = session.get(IdempotencyKey, (tenant, scope, key))
    if row is None:
        return None
    if row.request_hash != digest:
        raise KeyReused(
            f"Idempotency-Key {key!r} was already used for a different request; use a new key "
            "for a new request"
        )
    return Replay(row.resource_id)


def remember(
    session: Session,
    *,
    scope: str,
    key: str,
    digest: str,
    resource_id: str,
    tenant: str = DEFAULT_TENANT,
) -> None:
    """Record the key in the caller's transaction (flushed now, so a racing twin fails here
    with an IntegrityError rather than at commit)."""
    session.add(
        IdempotencyKey(
            tenant=tenant, scope=scope, key=key, request_hash=digest, resource_id=resource_id
        )
    )
    session.flush()
