"""A job's live channels: its events (status, progress, metric points, warnings) and its own
log records, as server-sent events a client can resume (`Last-Event-ID`), and the log as
pages too.

A stream reads the database every `POLL_SECONDS` in a session of its own, held only for the
read, so a thousand watchers hold no connection between reads. Streams do not count against
`API_MAX_IN_FLIGHT` (they would fill it while they wait); at most `MAX_STREAMS` run at once
per API process, and a further one is 503 `overloaded`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import Scope

from api.auth import ReadCaller
from api.deps import SessionDep, SettingsDep
from api.errors import ApiError
from api.routes.jobs import load_job, public, to_public
from api.strict_input import StrictRoute
from store import events
from store.db import session_factory, session_scope
from store.tables import Job, JobLog, JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=StrictRoute)

POLL_SECONDS = 0.5
KEEP_ALIVE_SECONDS = 15.0
MAX_STREAMS = 256
LOG_READ = 1_000  # log records a followed log reads at once
STREAM_SUFFIXES = ("/events", "/logs")

LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=64,
        description="Resume a stream after the event with this id (sent by a reconnecting "
        "EventSource by itself).",
    ),
]
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
        "description": "Server-sent events.",
    }
}


def is_stream(scope: Scope) -> bool:
    """A request that may stream for long (what load shedding must not count)."""
    return scope["method"] == "GET" and scope["path"].endswith(STREAM_SUFFIXES)


class _Streams:
    """How many streams this process serves. A route refuses a new one past `MAX_STREAMS`;
    the stream itself counts while it runs (a response never started never counts)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def check(self) -> None:
        if self.count >= MAX_STREAMS:
            raise ApiError(
                503,
                "overloaded",
                f"this server streams to {MAX_STREAMS} clients already; retry shortly",
                headers={"Retry-After": "5"},
            )

    def enter(self) -> None:
        with self._lock:
            self.count += 1

    def leave(self) -> None:
        with self._lock:
            self.count -= 1


STREAMS = _Streams()


def sse(kind: str, data: Any, event_id: str | None = None) -> bytes:
    lines = [f"id: {event_id}"] if event_id is not None else []
    lines += [f"event: {kind}", f"data: {json.dumps(data, separators=(',', ':'), default=str)}"]
    return ("\n".join(lines) + "\n\n").encode()


def parse_cursor(text: str | None) -> events.Cursor:
    try:
        return events.Cursor.parse(text)
    except ValueError:
        raise ApiError(
            422,
            "validation_error",
            "Last-Event-ID is not an id this stream sent",
            field="Last-Event-ID",
        ) from None


async def watched(
    request: Request, read: Callable[[], tuple[list[bytes], bool]]
) -> AsyncIterator[bytes]:
    """Call `read` (in a thread) every POLL_SECONDS and send what it returns, until it says
    the job is done or the client leaves; a comment line now and then keeps proxies open."""
    STREAMS.enter()
    try:
        last_sent = time.monotonic()
        while True:
            chunks, done = await run_in_threadpool(read)
            for chunk in chunks:
                yield chunk
            if chunks:
                last_sent = time.monotonic()
            if done:
                return
            if time.monotonic() - last_sent >= KEEP_ALIVE_SECONDS:
                yield b": keep-alive\n\n"
                last_sent = time.monotonic()
            await asyncio.sleep(POLL_SECONDS)
            if await request.is_disconnected():
                return
    finally:
        STREAMS.leave()


class EventReader:
    """One stream's reads of a job's events: what is new since the cursor, the progress when
    it moved, and `end` (the whole job) once it finished and everything before was sent."""

    def __init__(self, factory: sessionmaker[Session], job_id: str, cursor: events.Cursor):
        self.factory, self.job_id, self.cursor = factory, job_id, cursor
        self.progress: dict[str, Any] | None = None

    def __call__(self) -> tuple[list[bytes], bool]:
        with session_scope(self.factory) as session:
            job = session.get(Job, self.job_id)
            if job is None:  # deleted meanwhile
                return [], True
            # Read before the events: once it says finished, every event is committed.
            finished = JobStatus(job.status).finished
            chunks = []
            while True:
                found = events.read(session, self.job_id, self.cursor)
                for event in found:
                    self.cursor = event.cursor
                    chunks.append(sse(event.kind, event.data, str(self.cursor)))
                if not (finished and found):  # a finished job's history goes out at once
                    break
            # The progress alone at each read (the job row's); the whole job, with its model
            # and queue place, only for `end`.
            progress = to_public(job, None).progress.model_dump()
            if progress != self.progress:
                self.progress = progress
                chunks.append(sse("progress", progress, str(self.cursor)))
            if finished:
                whole = public(session, job).model_dump(mode="json")
                chunks.append(sse("end", whole, str(self.cursor)))
            return chunks, finished


@router.get(
    "/{job_id}/events",
    summary="Stream a job's events",
    operation_id="stream_job_events",
    responses=SSE_RESPONSE,
    description="Server-sent events, in order: `status` (`{job_id, status, attempt, worker, "
    "error, error_code, at}`: queued, running as attempt N, back to queued, finished), "
    "`progress` (`{step, total, fraction, eta_seconds}`, when it moves), `metrics` "
    "(`{points: [{name, step, value}]}`: new metric points), `warning` (`{step, code, "
    "message}`), and last `end` (the whole job, as GET /v1/jobs/{id}), after which the "
    "stream closes. A finished job's stream sends its history and closes. Every event has an "
    "id: reconnect with `Last-Event-ID` to go on after it. After a resume from a checkpoint "
    "a run may send points of steps it had sent before: a step's latest value wins.",
)
def job_events(
    job_id: str,
    caller: ReadCaller,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    load_job(session, job_id, caller)
    cursor = parse_cursor(last_event_id)
    STREAMS.check()
    reader = EventReader(session_factory(settings.resolved_database_url), job_id, cursor)
    return EventSourceResponse(watched(request, reader), headers=NO_BUFFERING)


# Proxies (nginx) must pass events on as they come.
NO_BUFFERING = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class JobLogRecord(BaseModel):
    id: int = Field(description="Increasing within the job: `after` of the next page.")
    attempt: int
    worker: str | None
    time: str
    level: str
    logger: str
    message: str


class JobLogsPublic(BaseModel):
    data: list[JobLogRecord]
    next_after: int = Field(description="Pass as `after` for the records that follow.")
    has_more: bool = Field(description="More records are stored after this page.")
    job_finished: bool = Field(description="The job has ended: no record will be added.")


def log_records(session: Session, job_id: str, after: int, limit: int) -> list[JobLogRecord]:
    rows = session.scalars(
        select(JobLog)
        .where(JobLog.job_id == job_id, JobLog.id > after)
        .order_by(JobLog.id)
        .limit(limit)
    ).all()
    return [
        JobLogRecord(
            id=row.id,
            attempt=row.attempt,
            worker=row.worker,
            time=row.created_at.isoformat(),
            level=row.level,
            logger=row.logger,
            message=row.message,
        )
        for row in rows
    ]


class LogReader:
    """One stream's reads of a job's log: the records after the cursor, until it ended."""

    def __init__(self, factory: sessionmaker[Session], job_id: str, after: int) -> None:
        self.factory, self.job_id, self.after = factory, job_id, after

    def __call__(self) -> tuple[list[bytes], bool]:
        with session_scope(self.factory) as session:
            # Read before the records: once it says finished, every record is committed.
            status = session.scalar(select(Job.status).where(Job.id == self.job_id))
            records = log_records(session, self.job_id, self.after, LOG_READ)
        chunks = []
        for record in records:
            self.after = record.id
            chunks.append(sse("log", record.model_dump(), str(record.id)))
        done = status is None or (JobStatus(status).finished and len(records) < LOG_READ)
        return chunks, done


@router.get(
    "/{job_id}/logs",
    summary="Read or follow a job's log",
    operation_id="get_job_logs",
    response_model=JobLogsPublic,
    responses=SSE_RESPONSE,
    description="The job's own log records from every attempt (attempt started and on which "
    "worker, progress lines, warnings, resumes), oldest first, `limit` at a time after "
    "`after`. With `follow=true` the answer is server-sent `log` events (each a record, its "
    "id the record's) until the job has ended and every record was sent; `Last-Event-ID` "
    "resumes.",
)
def job_logs(
    job_id: str,
    caller: ReadCaller,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    after: Annotated[int, Query(ge=0, le=2**62, description="Records after this id.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
    follow: Annotated[bool, Query(description="Stream records as they come.")] = False,
    last_event_id: LastEventId = None,
) -> JobLogsPublic | EventSourceResponse:
    job = load_job(session, job_id, caller)
    if follow:
        start = parse_cursor(last_event_id).event if last_event_id else after
        STREAMS.check()
        reader = LogReader(session_factory(settings.resolved_database_url), job_id, start)
        return EventSourceResponse(watched(request, reader), headers=NO_BUFFERING)
    records = log_records(session, job_id, after, limit + 1)
    page = records[:limit]
    return JobLogsPublic(
        data=page,
        next_after=page[-1].id if page else after,
        has_more=len(records) > limit,
        job_finished=JobStatus(job.status).finished,
    )
