"""`crucible-admin`: manage API keys and quotas on the server, straight on the database.

For the first key of a deployment, for a locked-out admin, and for scripts that run where
the database is (it reads the same settings as the API: DATABASE_URL...). It is part of the
server, not of the client package.

    crucible-admin keys create --tenant team-rl --scopes read,train,query [--expires-in-days 90]
    crucible-admin keys list [--tenant team-rl]
    crucible-admin keys revoke <key id>
    crucible-admin quotas set team-rl --active-jobs 5 --storage-bytes 1e9 --queries-per-minute 600
    crucible-admin quotas show team-rl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from store import keys, quotas
from store.db import session_factory, session_scope
from store.settings import Settings, get_settings
from store.tables import ApiKey, utcnow


def key_summary(row: ApiKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "prefix": row.prefix,
        "tenant": row.tenant,
        "name": row.name,
        "scopes": row.scopes,
        "state": keys.refusal(row) or "active",
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
    }


def create_key(session: Session, args: argparse.Namespace) -> dict[str, Any]:
    expires = utcnow() + timedelta(days=args.expires_in_days) if args.expires_in_days else None
    new = keys.create_key(
        session,
        tenant=args.tenant,
        scopes=[s.strip() for s in args.scopes.split(",") if s.strip()],
        name=args.name,
        expires_at=expires,
        created_by="cli",
    )
    return {**key_summary(new.row), "key": new.secret}


def list_keys(session: Session, args: argparse.Namespace) -> dict[str, Any]:
    rows, count = keys.list_keys(session, tenant=args.tenant, limit=10_000)
    return {"data": [key_summary(r) for r in rows], "count": count}


def revoke_key(session: Session, args: argparse.Namespace) -> dict[str, Any]:
    row = keys.revoke_key(session, args.key_id)
    if row is None:
        raise LookupError(f"no API key with id {args.key_id!r}")
    return key_summary(row)


def tenant_summary(session: Session, tenant: str, settings: Settings) -> dict[str, Any]:
    return dataclasses.asdict(quotas.summary(session, tenant, settings))


def set_quotas(session: Session, args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    keys.check_tenant(args.tenant)
    quotas.set_quotas(
        session,
        args.tenant,
        active_jobs=args.active_jobs,
        storage_bytes=int(args.storage_bytes) if args.storage_bytes is not None else None,
        queries_per_minute=args.queries_per_minute,
    )
    return tenant_summary(session, args.tenant, settings)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="crucible-admin", description=__doc__.split("\n\n")[0])
    groups = top.add_subparsers(dest="group", required=True)
    key_commands = groups.add_parser("keys", help="API keys").add_subparsers(
        dest="command", required=True
    )
    create = key_commands.add_parser("create", help="create a key; prints it once")
    create.add_argument("--tenant", required=True)
    create.add_argument("--scopes", required=True, help="comma-separated: read,train,query,admin")
    create.add_argument("--name")
    create.add_argument("--expires-in-days", type=float)
    listing = key_commands.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--tenant")
    revoke = key_commands.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id")
    quota_commands = groups.add_parser("quotas", help="per-tenant quotas").add_subparsers(
        dest="command", required=True
    )
    show = quota_commands.add_parser("show", help="a tenant's quotas and usage")
    show.add_argument("tenant")
    put = quota_commands.add_parser("set", help="set a tenant's quotas (omitted: the default)")
    put.add_argument("tenant")
    put.add_argument("--active-jobs", type=int)
    put.add_argument("--storage-bytes", type=float)
    put.add_argument("--queries-per-minute", type=int)
    return top


def run(argv: Sequence[str], settings: Settings) -> dict[str, Any]:
    args = parser().parse_args(argv)
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        if args.group == "keys":
            action = {"create": create_key, "list": list_keys, "revoke": revoke_key}
            return action[args.command](session, args)
        if args.command == "set":
            return set_quotas(session, args, settings)
        return tenant_summary(session, keys.check_tenant(args.tenant), settings)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        result = run(sys.argv[1:] if argv is None else argv, get_settings())
    except (keys.KeySpecError, LookupError) as exc:
        print(f"crucible-admin: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
