"""The SSE parser and the typed events, on streams written by hand: what the server's
stream may hold that a finished job's does not (multi-line data, comments, CRLF, unknown
event types)."""

from __future__ import annotations

import json
from typing import Any

from crucible_client.events import (
    EndEvent,
    MetricsEvent,
    OtherEvent,
    ProgressEvent,
    ServerEvent,
    SseParser,
    StatusEvent,
    job_event,
    log_record,
    parse_lines,
)

JOB: dict[str, Any] = {
    "id": "j1", "name": None, "algorithm": "dqn", "status": "succeeded", "config": {},
    "seed": 0, "tags": {}, "queue": "cpu",
    "progress": {"step": 10, "total": 10, "fraction": 1.0, "eta_seconds": None},
    "attempt": 1, "worker": "w", "error": None, "error_code": None, "warnings": [],
    "model_id": "m1", "register_as": None, "max_runtime_seconds": None,
    "cancel_requested": False, "submitted_by": None, "cancelled_by": None,
    "checkpoint_step": None, "resumed_from_step": None, "created_at": "2026-01-01T00:00:00Z",
    "enqueued_at": None, "started_at": None, "finished_at": None, "heartbeat_at": None,
    "links": {},
}  # fmt: skip


def test_parser_follows_the_specification() -> None:
    lines = [
        ": keep-alive",
        "",
        "id: 1",
        "event: status",
        'data: {"job_id": "j1", "status": "running",',
        'data:  "attempt": 1}',
        "",
        "event: progress\r",
        'data: {"step": 5, "total": 10, "fraction": 0.5, "eta_seconds": 3}',
        "retry: 1000",
        "",
        "id: 3",
        "event: shiny-new",
        "data: [1, 2]",
    ]
    found = list(parse_lines(iter(lines)))
    assert [e.event for e in found] == ["status", "progress", "shiny-new"]
    assert found[0].data == '{"job_id": "j1", "status": "running",\n "attempt": 1}'
    assert found[1].id == "1"  # the last id seen carries over, as browsers do
    status, progress, other = (job_event(e) for e in found)
    assert isinstance(status, StatusEvent) and status.attempt == 1 and status.event_id == "1"
    assert isinstance(progress, ProgressEvent) and progress.eta_seconds == 3
    assert isinstance(other, OtherEvent) and other.data == [1, 2] and other.event_id == "3"


def test_end_metrics_and_log_events() -> None:
    end = job_event(ServerEvent("9", "end", json.dumps(JOB)))
    assert isinstance(end, EndEvent) and end.job.model_id == "m1" and end.job.finished
    points = {"points": [{"name": "losses/td", "step": 3, "value": 0.5}]}
    metrics = job_event(ServerEvent("4", "metrics", json.dumps(points)))
    assert isinstance(metrics, MetricsEvent) and metrics.points[0].value == 0.5
    record = {
        "id": 7, "attempt": 1, "worker": "w", "time": "2026-01-01T00:00:00+00:00",
        "level": "INFO", "logger": "crucible.job", "message": "started",
    }  # fmt: skip
    found = log_record(ServerEvent("7", "log", json.dumps(record)))
    assert found is not None and found.id == 7 and found.message == "started"
    assert log_record(ServerEvent(None, "message", "")) is None


def test_an_event_needs_a_blank_line() -> None:
    parser = SseParser()
    assert parser.feed("data: x") is None
    assert parser.feed("") == ServerEvent(None, "message", "x")
    assert parser.feed("") is None  # nothing pending
