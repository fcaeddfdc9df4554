"""What every command shares: the connection (global --url/--api-key), `--json` output,
`--set key=value` parsing, and turning API errors into a message and an exit status."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import BaseModel
from rich import box
from rich.console import Console
from rich.table import Table

from crucible_client.client import Client
from crucible_client.errors import CrucibleError

JsonOption = Annotated[
    bool, typer.Option("--json", help="Machine-readable JSON on stdout, and nothing else.")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="key=value (value read as JSON when it parses, else a string); dotted keys "
        "nest (env.kind=grid). Repeatable.",
    ),
]


PIPED_WIDTH = 160  # no terminal to fit: Rich would assume 80 columns and wrap every cell


@dataclass
class State:
    """The global options, filled by the app's callback; `http` lets tests hand in a
    TestClient (`CliRunner.invoke(app, args, obj=test_client)`)."""

    url: str | None = None
    api_key: str | None = None
    timeout: float = 30.0
    http: httpx.Client | None = None
    json: bool = False
    client: Client | None = field(default=None, repr=False)


def state(ctx: typer.Context) -> State:
    found = ctx.find_root().obj
    assert isinstance(found, State), "the app's callback sets the state"
    return found


def connect(ctx: typer.Context, as_json: bool = False) -> Client:
    """The client for this command (and whether it answers JSON, for its errors too)."""
    current = state(ctx)
    current.json = current.json or as_json
    if current.client is None:
        current.client = Client(
            current.url, current.api_key, timeout=current.timeout, http=current.http
        )
        ctx.call_on_close(current.client.close)
    return current.client


# -- output ------------------------------------------------------------------------------------
def plain(value: Any) -> Any:
    """JSON-ready data of answers (pydantic models, lists of them, dicts)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(plain(value), indent=2, default=str))


def said(as_json: bool, value: Any, text: str) -> None:
    """What a command did: `value` as JSON with --json, else `text` for a person."""
    if as_json:
        emit_json(value)
    else:
        console().print(text)


def console() -> Console:
    """Rich on stdout (created per call, so that captured output in tests is honoured)."""
    found = Console()
    return found if found.is_terminal else Console(width=PIPED_WIDTH)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A Rich table whose first column (the id people copy) is never cut or wrapped."""
    shown = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for i, column in enumerate(columns):
        shown.add_column(column, no_wrap=i == 0)
    for row in rows:
        shown.add_row(*("" if cell is None else str(cell) for cell in row))
    console().print(shown)


def fields(title: str, values: Mapping[str, Any]) -> None:
    """One resource as a two-column table."""
    rows = [
        (k, json.dumps(v, default=str) if isinstance(v, dict | list) else v)
        for k, v in values.items()
    ]
    table(title, ["field", "value"], rows)


def report_error(error: CrucibleError, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "status": error.status,
                **(error.body or {"code": error.code, "message": error.message}),
            }
        )
        return
    where = f" (field {error.field})" if error.field else ""
    Console(stderr=True).print(f"[red]error {error.code}{where}: {error.message}", highlight=False)


def exit_status(error: CrucibleError) -> int:
    """2 for what the client sent (4xx), 1 for everything else."""
    return 2 if 400 <= error.status < 500 else 1


# -- input -------------------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """JSON when it parses (numbers, true, lists, objects), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def apply_sets(base: dict[str, Any], sets: Iterable[str] | None) -> dict[str, Any]:
    """`base` with each `key=value` set; `a.b=1` makes or updates the object at `a`."""
    result = json.loads(json.dumps(base))
    for item in sets or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint="--set")
        *parents, last = key.split(".")
        node = result
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[last] = parse_value(text)
    return result


def load_json(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint=what) from None


def load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    loaded = load_json(path.read_text(), "--config")
    if not isinstance(loaded, dict):
        raise typer.BadParameter("the file must hold a JSON object", param_hint="--config")
    return loaded


def parse_tags(tags: Iterable[str] | None) -> dict[str, str]:
    """`team=rl` options as {"team": "rl"}."""
    found = {}
    for tag in tags or []:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{tag!r} is not key=value", param_hint="--tag")
        found[key] = value
    return found
