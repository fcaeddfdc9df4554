"""Server-Sent Events: a small parser (the WHATWG rules the API uses: `id`, `event`, `data`
fields, multi-line data joined by "\\n", a blank line ends an event, `:` lines are
keep-alives) and the typed events of `GET /v1/jobs/{id}/events` and of followed logs.

Parsing here, not in a dependency, keeps the client's requirements to httpx, pydantic, typer
and rich, and lets the sync and async clients share it line by line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from crucible_client.schemas import Answer, Job, JobStatus, LogRecord


@dataclass(frozen=True)
class ServerEvent:
    """One event as sent: its id (opaque; what `Last-Event-ID` resumes after), its type
    (`message` when the server names none) and its data."""

    id: str | None
    event: str
    data: str


class SseParser:
    """Feed it lines (without their line breaks); it returns each event as it completes."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> ServerEvent | None:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a keep-alive comment
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None  # `retry` and unknown fields are ignored, as browsers do

    def _dispatch(self) -> ServerEvent | None:
        if not self._data and not self._event:
            return None
        event = ServerEvent(self._id, self._event or "message", "\n".join(self._data))
        self._event, self._data = "", []  # the id persists, per the specification
        return event


# -- typed events ----------------------------------------------------------------------------
class JobEvent(Answer):
    """What every event of a job's stream has: the id to resume after."""

    event_id: str | None = None


class StatusEvent(JobEvent):
    job_id: str
    status: JobStatus
    attempt: int
    worker: str | None = None
    error: str | None = None
    error_code: str | None = None
    at: datetime | None = None


class ProgressEvent(JobEvent):
    step: int
    total: int | None = None
    fraction: float | None = None
    eta_seconds: int | None = None


class MetricPoint(BaseModel):
    name: str
    step: int
    value: float


class MetricsEvent(JobEvent):
    points: list[MetricPoint]


class WarningEvent(JobEvent):
    step: int
    code: str
    message: str


class EndEvent(JobEvent):
    """The last event: the job as `GET /v1/jobs/{id}` shows it, finished."""

    job: Job


class OtherEvent(JobEvent):
    """An event type this client does not know (a newer server's): kept, not dropped."""

    event: str
    data: Any = None


EVENT_TYPES: dict[str, type[JobEvent]] = {
    "status": StatusEvent,
    "progress": ProgressEvent,
    "metrics": MetricsEvent,
    "warning": WarningEvent,
}


def job_event(raw: ServerEvent) -> JobEvent:
    """The typed event of a job's stream."""
    data = json.loads(raw.data) if raw.data else None
    if raw.event == "end":
        return EndEvent(event_id=raw.id, job=Job.model_validate(data))
    cls = EVENT_TYPES.get(raw.event)
    if cls is None or not isinstance(data, dict):
        return OtherEvent(event_id=raw.id, event=raw.event, data=data)
    return cls.model_validate({**data, "event_id": raw.id})


def log_record(raw: ServerEvent) -> LogRecord | None:
    """The record of a followed log's `log` event (other events carry no record)."""
    if raw.event != "log":
        return None
    return LogRecord.model_validate_json(raw.data)


def parse_lines(lines: Iterator[str]) -> Iterator[ServerEvent]:
    """Every event of a whole stream of lines (for streams already read)."""
    parser = SseParser()
    for line in [*lines, ""]:
        event = parser.feed(line)
        if event is not None:
            yield event
