"""`crucible query` and `crucible models ...` (models and their registered names)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from crucible_client.cli.common import (
    JsonOption,
    SetOption,
    apply_sets,
    connect,
    emit_json,
    fields,
    load_json,
    said,
    table,
)
from crucible_client.cli.jobs import show_job
from crucible_client.cli.jobs import watch as follow

app = typer.Typer(no_args_is_help=True)


def query(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model id, job id, name@alias or name@N.")],
    query_name: Annotated[str, typer.Argument(metavar="QUERY", help="e.g. q-values, samples.")],
    body: Annotated[str | None, typer.Option("--body", help="The request, as JSON.")] = None,
    sets: SetOption = None,
    obs: Annotated[
        str | None, typer.Option("--obs", help="JSON for the `observations` field.")
    ] = None,
    media: Annotated[str, typer.Option("--format", help="json, png, npy or gif.")] = "json",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the answer to this file.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Ask a model a query (a heavy one is waited for)."""
    request: dict[str, Any] = load_json(body, "--body") or {}
    if obs is not None:
        request["observations"] = load_json(obs, "--obs")
    request = apply_sets(request, sets)
    if media != "json" and out is None:
        raise typer.BadParameter("a binary answer needs --out FILE", param_hint="--out")
    answer = connect(ctx, as_json).query(
        model, query_name, request if request or body else None, format=media
    )
    if out is not None:
        data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        out.write_bytes(data)
        said(as_json, {"path": str(out), "bytes": len(data)}, f"wrote {out} ({len(data):,} bytes)")
    elif as_json or isinstance(answer, dict):
        emit_json(answer)


@app.command("ls")
def list_models(
    ctx: typer.Context,
    algorithm: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option()] = 50,
    as_json: JsonOption = False,
) -> None:
    """List trained and imported models, newest first."""
    page = connect(ctx, as_json).list_models(algorithm=algorithm, limit=limit)
    if as_json:
        emit_json(page)
        return
    rows = [
        (
            m.id,
            m.algorithm,
            m.kind,
            (m.job_id or "")[:8],
            ", ".join(f"{r.name}@{r.version}" for r in m.registered_as),
            f"{m.size_bytes:,}",
        )
        for m in page.data
    ]
    columns = ["id", "algorithm", "kind", "job", "registered", "bytes"]
    table(f"models ({len(page.data)} of {page.count})", columns, rows)


@app.command("show")
def show(ctx: typer.Context, model: str, as_json: JsonOption = False) -> None:
    """A model: kind, queries, shapes, summary."""
    found = connect(ctx, as_json).get_model(model)
    if as_json:
        emit_json(found)
    else:
        fields(f"model {found.id}", found.model_dump(mode="json", exclude={"links", "config"}))


@app.command("delete")
def delete(ctx: typer.Context, model: str, as_json: JsonOption = False) -> None:
    """Delete a model."""
    connect(ctx, as_json).delete_model(model)
    said(as_json, {"deleted": model}, f"deleted model {model}")


@app.command("continue")
def continue_training(
    ctx: typer.Context,
    model: str,
    sets: SetOption = None,
    name: Annotated[str | None, typer.Option()] = None,
    watch: Annotated[bool, typer.Option(help="Follow the new job to its end.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Continue a model's training as a new job (--set total_steps=... for a larger budget)."""
    client = connect(ctx, as_json)
    job = client.continue_training(model, config=apply_sets({}, sets) or None, name=name)
    if watch:
        follow(client, job.id, as_json)
    else:
        show_job(job, as_json)


@app.command("register")
def register(ctx: typer.Context, name: str, model_id: str, as_json: JsonOption = False) -> None:
    """Make a model the name's next version."""
    version = connect(ctx, as_json).register(name, model_id)
    said(as_json, version, f"{name}@{version.version} is model {version.model_id}")


@app.command("alias")
def alias(
    ctx: typer.Context, name: str, alias: str, version: int, as_json: JsonOption = False
) -> None:
    """Point an alias (production, staging) at one of the name's versions."""
    found = connect(ctx, as_json).set_alias(name, alias, version)
    said(as_json, found, f"{name}@{alias} -> version {found.version} (model {found.model_id})")


@app.command("download")
def download(
    ctx: typer.Context,
    model: str,
    out: Annotated[Path, typer.Option("--out", help="Where to write the model file.")],
    as_json: JsonOption = False,
) -> None:
    """Save a model's file (importable elsewhere with the API's POST /v1/models)."""
    data = connect(ctx, as_json).download_model(model)
    out.write_bytes(data)
    said(as_json, {"path": str(out), "bytes": len(data)}, f"wrote {out} ({len(data):,} bytes)")
