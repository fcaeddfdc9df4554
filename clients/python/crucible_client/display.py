"""What people see while they wait: a job's live progress bar (ETA from the server's pace,
the latest metrics, warnings as they come) and an upload's bar. Drawn with Rich on stderr,
so that a command's stdout stays machine-readable. Both clients and the CLI use these."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TransferSpeedColumn,
)

from crucible_client.events import (
    EndEvent,
    JobEvent,
    MetricsEvent,
    ProgressEvent,
    StatusEvent,
    WarningEvent,
)
from crucible_client.schemas import Job

SHOWN_METRICS = 3


def seconds(value: int | None) -> str:
    if value is None:
        return "eta -"
    minutes, secs = divmod(int(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"eta {hours}:{minutes:02d}:{secs:02d}" if hours else f"eta {minutes}:{secs:02d}"


class JobDisplay:
    """A progress bar for one job, fed its events (or, when polling, the job itself)."""

    def __init__(self, job_id: str, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[eta]}"),
            TextColumn("[cyan]{task.fields[metrics]}"),
            console=self.console,
            transient=False,
        )
        self.latest: dict[str, float] = {}
        self.task: TaskID = self.progress.add_task(
            f"{job_id[:8]} queued", total=None, eta="eta -", metrics=""
        )
        self.job_id = job_id

    def __enter__(self) -> JobDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def show(self, item: JobEvent | Job) -> None:
        if isinstance(item, Job):
            self._status(item.status, item.error)
            p = item.progress
            self._progress(ProgressEvent(step=p.step, total=p.total, eta_seconds=p.eta_seconds))
        elif isinstance(item, EndEvent):
            self.show(item.job)
        elif isinstance(item, StatusEvent):
            self._status(item.status, item.error)
        elif isinstance(item, ProgressEvent):
            self._progress(item)
        elif isinstance(item, MetricsEvent):
            self.latest.update({p.name: p.value for p in item.points})
            shown = list(self.latest.items())[-SHOWN_METRICS:]
            text = "  ".join(f"{k}={v:.4g}" for k, v in shown)
            self.progress.update(self.task, metrics=text)
        elif isinstance(item, WarningEvent):
            self.console.print(f"[yellow]warning at step {item.step}: {item.code}: {item.message}")

    def _status(self, status: str, error: str | None) -> None:
        self.progress.update(self.task, description=f"{self.job_id[:8]} {status}")
        if error:
            self.console.print(f"[red]{error}")

    def _progress(self, event: ProgressEvent) -> None:
        self.progress.update(
            self.task, completed=event.step, total=event.total, eta=seconds(event.eta_seconds)
        )


@contextmanager
def job_display(job_id: str, enabled: bool) -> Iterator[Callable[[JobEvent | Job], None]]:
    """A function to show a job's events with: a live bar when enabled, else nothing."""
    if not enabled:
        yield lambda item: None
        return
    with JobDisplay(job_id) as display:
        yield display.show


@contextmanager
def upload_bar(total: int, label: str, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """A callback taking the bytes sent so far, drawing a transfer bar; None when disabled."""
    if not enabled:
        yield None
        return
    progress = Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
    )
    with progress:
        task = progress.add_task(label, total=total)

        def sent(position: int) -> None:
            progress.update(task, completed=position)

        yield sent
