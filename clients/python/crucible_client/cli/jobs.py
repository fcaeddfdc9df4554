"""`crucible train`, `crucible plot` and `crucible jobs ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crucible_client.cli.common import (
    JsonOption,
    SetOption,
    apply_sets,
    connect,
    console,
    emit_json,
    fields,
    load_config,
    parse_tags,
    said,
    table,
)
from crucible_client.client import Client
from crucible_client.schemas import Job, JobStatus

app = typer.Typer(no_args_is_help=True)

TagOption = Annotated[list[str] | None, typer.Option("--tag", help="key=value; repeatable.")]


def percent(job: Job) -> str:
    fraction = job.progress.fraction
    return "" if fraction is None else f"{fraction:.0%}"


def show_job(job: Job, as_json: bool) -> None:
    if as_json:
        emit_json(job)
        return
    shown = job.model_dump(mode="json", exclude={"config", "links"})
    shown["progress"] = f"{job.progress.step}/{job.progress.total or '?'} {percent(job)}"
    fields(f"job {job.id}", {k: v for k, v in shown.items() if v not in (None, [], {})})


def watch(client: Client, job_id: str, as_json: bool) -> None:
    """Follow the job to its end (a live bar unless --json); non-zero if it did not succeed."""
    job = client.wait(job_id, progress=not as_json)
    show_job(job, as_json)
    if job.status != JobStatus.succeeded:
        raise typer.Exit(1)


def train(
    ctx: typer.Context,
    algorithm: Annotated[str, typer.Argument(help="See `crucible algorithms`.")],
    sets: SetOption = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="A JSON file with the config.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds every random number of the run.")] = 0,
    name: Annotated[str | None, typer.Option(help="A name to find the job by.")] = None,
    tags: TagOption = None,
    register: Annotated[
        str | None, typer.Option("--register", help="Register the model under this name.")
    ] = None,
    max_runtime: Annotated[
        float | None, typer.Option("--max-runtime", help="Wall-clock limit in seconds.")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="A retry with the same key answers the same job.")
    ] = None,
    watch_: Annotated[
        bool, typer.Option("--watch", help="Follow it to its end; non-zero if it fails.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Submit a training job (config from --config, then each --set)."""
    client = connect(ctx, as_json)
    job = client.submit(
        algorithm,
        apply_sets(load_config(config), sets),
        seed=seed,
        name=name,
        tags=parse_tags(tags),
        register_as=register,
        max_runtime_seconds=max_runtime,
        idempotency_key=idempotency_key,
    )
    if watch_:
        if not as_json:
            console().print(f"submitted job {job.id}")
        watch(client, job.id, as_json)
    elif as_json:
        emit_json(job)
    else:
        console().print(f"submitted job {job.id} ({job.status}); `crucible jobs watch {job.id}`")


def plot(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the PNG.")] = Path(
        "curves.png"
    ),
    names: Annotated[
        list[str] | None, typer.Option("--metric", help="Only this metric; repeatable.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Save the job's training curves as a PNG (one panel per metric)."""
    png = connect(ctx, as_json).curves_png(job_id, names)
    out.write_bytes(png)
    said(as_json, {"path": str(out), "bytes": len(png)}, f"wrote {out} ({len(png):,} bytes)")


@app.command("ls")
def list_jobs(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="queued, running, succeeded, ...")] = None,
    algorithm: Annotated[str | None, typer.Option()] = None,
    name: Annotated[str | None, typer.Option()] = None,
    tags: TagOption = None,
    sort: Annotated[str | None, typer.Option(help="A column; '-' first: descending.")] = None,
    limit: Annotated[int, typer.Option()] = 50,
    as_json: JsonOption = False,
) -> None:
    """List jobs, newest first."""
    page = connect(ctx, as_json).list_jobs(
        status=status, algorithm=algorithm, name=name, tag=dict(parse_tags(tags)) or None,
        sort=sort, limit=limit,
    )  # fmt: skip
    if as_json:
        emit_json(page)
        return
    rows = [
        (
            j.id,
            j.name,
            j.algorithm,
            j.status.value,
            percent(j),
            j.created_at.strftime("%Y-%m-%d %H:%M"),
        )
        for j in page.data
    ]
    table(
        f"jobs ({len(page.data)} of {page.count})",
        ["id", "name", "algorithm", "status", "progress", "created"],
        rows,
    )


@app.command("show")
def show(ctx: typer.Context, job_id: str, as_json: JsonOption = False) -> None:
    """A job's status, progress, errors and warnings."""
    show_job(connect(ctx, as_json).get(job_id), as_json)


@app.command("cancel")
def cancel(ctx: typer.Context, job_id: str, as_json: JsonOption = False) -> None:
    """Cancel a job (a running one stops within about a second)."""
    show_job(connect(ctx, as_json).cancel(job_id), as_json)


@app.command("resume")
def resume(ctx: typer.Context, job_id: str, as_json: JsonOption = False) -> None:
    """Queue a cancelled job again, from its last checkpoint."""
    show_job(connect(ctx, as_json).resume(job_id), as_json)


@app.command("delete")
def delete(ctx: typer.Context, job_id: str, as_json: JsonOption = False) -> None:
    """Delete a finished job."""
    connect(ctx, as_json).delete_job(job_id)
    said(as_json, {"deleted": job_id}, f"deleted job {job_id}")


@app.command("watch")
def watch_job(ctx: typer.Context, job_id: str, as_json: JsonOption = False) -> None:
    """Follow a job to its end with a live progress bar; non-zero if it does not succeed."""
    watch(connect(ctx, as_json), job_id, as_json)


@app.command("logs")
def logs(
    ctx: typer.Context,
    job_id: str,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Until the job ends.")] = False,
    as_json: JsonOption = False,
) -> None:
    """The job's log records (one JSON object per line with --json)."""
    client = connect(ctx, as_json)
    records = client.follow_logs(job_id) if follow else iter(client.logs(job_id, limit=1000).data)
    for record in records:
        if as_json:
            typer.echo(record.model_dump_json())
        else:
            when = record.time.isoformat(" ", "seconds")
            typer.echo(f"{when} {record.level:<7} {record.logger}: {record.message}")


@app.command("clone")
def clone(
    ctx: typer.Context,
    job_id: str,
    seed: Annotated[int | None, typer.Option()] = None,
    name: Annotated[str | None, typer.Option()] = None,
    sets: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Submit a job again, with another seed or name, and --set changes to its config."""
    patch = apply_sets({}, sets) or None
    show_job(connect(ctx, as_json).clone(job_id, seed=seed, name=name, config=patch), as_json)
