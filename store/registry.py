"""Named models, the way a model registry works: a name has numbered versions (each one a
model), and aliases such as `production` or `staging` that point at one version and can move.

`store.models.resolve` turns `name@alias` and `name@N` into a model on every request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.tables import DEFAULT_TENANT, ModelAlias, ModelVersion

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# An alias may not be all digits: `name@3` always means version 3.
ALIAS = re.compile(r"^(?!\d+$)[A-Za-z0-9_-]{1,64}$")


class RegistryError(ValueError):
    """A bad name, alias or version; `field` says which."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NameNotFound(LookupError):
    pass


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise RegistryError(
            f"{name!r} is not a valid model name: 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field="name",
        )
    return name


def check_alias(alias: str) -> str:
    if not ALIAS.match(alias):
        raise RegistryError(
            f"{alias!r} is not a valid alias: 1-64 letters, digits, '_' or '-', not all digits",
            field="alias",
        )
    return alias


def register_version(
    session: Session, *, name: str, model_id: str, tenant: str = DEFAULT_TENANT
) -> ModelVersion:
    """Make `model_id` the next version of `name` (version 1 creates the name).

    Two registrations racing for the same number: the primary key refuses the loser, which
    takes the next number (savepoint, so the caller's transaction survives)."""
    check_name(name)
    for _ in range(5):
        latest = session.scalar(
            select(func.max(ModelVersion.version)).where(
                ModelVersion.tenant == tenant, ModelVersion.name == name
            )
        )
        entry = ModelVersion(tenant=tenant, name=name, version=(latest or 0) + 1, model_id=model_id)
        try:
            with session.begin_nested():
                session.add(entry)
        except IntegrityError:
            continue
        return entry
    raise RuntimeError(f"could not register a version of {name!r}: too much contention")


def set_alias(
    session: Session, *, name: str, alias: str, version: int, tenant: str = DEFAULT_TENANT
) -> ModelAlias:
    check_alias(alias)
    if session.get(ModelVersion, (tenant, name, version)) is None:
        if not versions(session, name=name, tenant=tenant):
            raise NameNotFound(name)
        raise RegistryError(f"{name!r} has no version {version}", field="version")
    row = session.get(ModelAlias, (tenant, name, alias))
    if row is None:
        row = ModelAlias(tenant=tenant, name=name, alias=alias, version=version)
        session.add(row)
    else:
        row.version = version
    session.flush()
    return row


def delete_alias(session: Session, *, name: str, alias: str, tenant: str = DEFAULT_TENANT) -> bool:
    row = session.get(ModelAlias, (tenant, name, alias))
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def versions(
    session: Session, *, name: str, tenant: str = DEFAULT_TENANT
) -> Sequence[ModelVersion]:
    return session.scalars(
        select(ModelVersion)
        .where(ModelVersion.tenant == tenant, ModelVersion.name == name)
        .order_by(ModelVersion.version)
    ).all()


def aliases(session: Session, *, name: str, tenant: str = DEFAULT_TENANT) -> Sequence[ModelAlias]:
    return session.scalars(
        select(ModelAlias)
        .where(ModelAlias.tenant == tenant, ModelAlias.name == name)
        .order_by(ModelAlias.alias)
    ).all()


@dataclass(frozen=True)
class NameSummary:
    name: str
    latest_version: int
    versions: int


def list_names(
    session: Session, *, limit: int = 50, offset: int = 0, tenant: str = DEFAULT_TENANT
) -> tuple[list[NameSummary], int]:
    mine = ModelVersion.tenant == tenant
    count = session.scalar(select(func.count(func.distinct(ModelVersion.name))).where(mine)) or 0
    rows = session.execute(
        select(ModelVersion.name, func.max(ModelVersion.version), func.count())
        .where(mine)
        .group_by(ModelVersion.name)
        .order_by(ModelVersion.name)
        .limit(limit)
        .offset(offset)
    ).all()
    return [NameSummary(name, latest, n) for name, latest, n in rows], count
