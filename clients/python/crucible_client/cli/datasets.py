"""`crucible datasets ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crucible_client.cli.common import JsonOption, connect, emit_json, fields, said, table

app = typer.Typer(no_args_is_help=True)


@app.command("upload")
def upload(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The data file.")],
    kind: Annotated[str, typer.Option(help="samples, transitions, trajectories or mdp.")],
    name: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOption = False,
) -> None:
    """Upload a dataset (validated by the server; a progress bar on stderr)."""
    found = connect(ctx, as_json).upload(file, kind, name, progress=not as_json)
    said(as_json, found, f"dataset {found.id}: {found.kind}, {found.rows} rows")


@app.command("ls")
def list_datasets(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option()] = None,
    builtin: Annotated[bool, typer.Option(help="Include built-in datasets.")] = True,
    as_json: JsonOption = False,
) -> None:
    """List datasets, built-in ones first."""
    page = connect(ctx, as_json).list_datasets(kind=kind, builtin=builtin)
    if as_json:
        emit_json(page)
        return
    rows = [(d.id, d.name, d.kind, d.rows, d.size_bytes, ", ".join(d.used_by)) for d in page.data]
    table(f"datasets ({page.count})", ["id", "name", "kind", "rows", "bytes", "used by"], rows)


@app.command("show")
def show(ctx: typer.Context, dataset_id: str, as_json: JsonOption = False) -> None:
    """A dataset's kind, shapes and the jobs that use it."""
    found = connect(ctx, as_json).get_dataset(dataset_id)
    if as_json:
        emit_json(found)
    else:
        fields(f"dataset {found.id}", found.model_dump(mode="json"))


@app.command("delete")
def delete(ctx: typer.Context, dataset_id: str, as_json: JsonOption = False) -> None:
    """Delete an uploaded dataset (not while a queued or running job uses it)."""
    connect(ctx, as_json).delete_dataset(dataset_id)
    said(as_json, {"deleted": dataset_id}, f"deleted dataset {dataset_id}")
