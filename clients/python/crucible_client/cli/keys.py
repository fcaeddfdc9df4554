"""`crucible keys ...` (admin scope)."""

from __future__ import annotations

from typing import Annotated

import typer

from crucible_client.cli.common import JsonOption, connect, console, emit_json, said, table

app = typer.Typer(no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for.")],
    scopes: Annotated[
        str, typer.Option("--scopes", help="Comma-separated: read,train,query,admin.")
    ] = "read,train,query",
    name: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    expires_in_days: Annotated[float | None, typer.Option()] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key; its secret is shown this once."""
    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    key = connect(ctx, as_json).create_key(
        tenant, wanted, name=name, expires_in_days=expires_in_days
    )
    if as_json:
        emit_json(key)
    else:
        console().print(f"key {key.id} for {key.tenant} ({', '.join(key.scopes)}):")
        typer.echo(key.key)


@app.command("ls")
def list_keys(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOption = False,
) -> None:
    """List API keys (never their secrets)."""
    page = connect(ctx, as_json).list_keys(tenant=tenant)
    if as_json:
        emit_json(page)
        return
    rows = [(k.id, k.prefix, k.tenant, k.name, ",".join(k.scopes), k.state) for k in page.data]
    table(f"keys ({page.count})", ["id", "prefix", "tenant", "name", "scopes", "state"], rows)


@app.command("revoke")
def revoke(ctx: typer.Context, key_id: str, as_json: JsonOption = False) -> None:
    """Revoke a key: it stops working at once."""
    key = connect(ctx, as_json).revoke_key(key_id)
    said(as_json, key, f"revoked key {key.id} ({key.state})")
