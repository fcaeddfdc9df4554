"""`crucible`: the command line of the API, on top of `crucible_client.Client`.

Global options (--url, --api-key, or CRUCIBLE_URL and CRUCIBLE_API_KEY) come before the
command; `--json` on any command prints machine-readable JSON and nothing else on stdout.
An error answer prints its code and message (in red, or as JSON) and exits 2 for a 4xx,
1 otherwise.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from typer.core import TyperGroup

from crucible_client.cli import datasets, jobs, keys, models
from crucible_client.cli.common import (
    JsonOption,
    State,
    connect,
    emit_json,
    exit_status,
    report_error,
    table,
)
from crucible_client.errors import CrucibleError


class Commands(TyperGroup):
    """The root command: every API error of every command ends here, as a message and an
    exit status instead of a traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer vendors its own click Context
        try:
            return super().invoke(ctx)
        except CrucibleError as error:
            report_error(error, isinstance(ctx.obj, State) and ctx.obj.json)
            raise typer.Exit(exit_status(error)) from None
        except TimeoutError as error:
            Console(stderr=True).print(f"[red]{error}", highlight=False)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=Commands,
    help="Train models and ask them queries on a Crucible API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(jobs.app, name="jobs", help="List, inspect, follow, cancel, delete and clone jobs.")
app.add_typer(models.app, name="models", help="Trained models and their registered names.")
app.add_typer(datasets.app, name="datasets", help="Upload, list and delete datasets.")
app.add_typer(keys.app, name="keys", help="API keys (admin).")
app.command("train")(jobs.train)
app.command("plot")(jobs.plot)
app.command("query")(models.query)


@app.callback()
def options(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(envvar="CRUCIBLE_URL", help="The API's URL.")] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="CRUCIBLE_API_KEY", help="Sent as Authorization: Bearer <key>."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.")] = 30.0,
) -> None:
    http = ctx.obj if isinstance(ctx.obj, httpx.Client) else None
    ctx.obj = State(url=url, api_key=api_key, timeout=timeout, http=http)


@app.command("algorithms")
def algorithms(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """What can be trained, and the queries each algorithm's models answer."""
    found = connect(ctx, as_json).algorithms()
    if as_json:
        emit_json(found)
        return
    rows = [(a.name, a.family, a.queue, ", ".join(a.queries)) for a in found]
    table("algorithms", ["name", "family", "queue", "queries"], rows)


def main() -> None:
    app()
