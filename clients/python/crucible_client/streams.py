"""Deadlines, and the state of one resumable Server-Sent Events stream: which request
(re)opens it, what each line means, when it is over. The sync and async clients only read
lines and hand them here, so reconnection with `Last-Event-ID` is written once."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from crucible_client.errors import CrucibleConnectionError, CrucibleError, check
from crucible_client.events import ServerEvent, SseParser

if TYPE_CHECKING:
    from crucible_client.protocol import Requests

STREAM_READ_TIMEOUT = 60.0  # the server sends keep-alives far more often than this


def remaining(deadline: float | None, what: str) -> float:
    """Seconds left before `deadline` (time.monotonic), or TimeoutError once it has passed."""
    if deadline is None:
        return float("inf")
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"{what}: still not finished when the timeout ran out")
    return left


def deadline_after(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


class StreamUnavailable(CrucibleError):
    """The server answered, but not with an event stream (an older server)."""


class EventStream:
    """One resumable Server-Sent Events stream: which request (re)opens it (with
    `Last-Event-ID` after a dropped connection), what each line means, and when it is over.
    A job's events end with `end`; a followed log ends when the server closes it."""

    RETRIES = 3

    def __init__(
        self,
        api: Requests,
        path: str,
        params: Mapping[str, Any],
        last_event_id: str | None,
        deadline: float | None,
        *,
        ends_with_close: bool = False,
    ) -> None:
        self.api = api
        self.path = path
        self.params = dict(params)
        self.last_event_id = last_event_id
        self.deadline = deadline
        self.ends_with_close = ends_with_close
        self.finished = False
        self.failures = 0
        self.parser = SseParser()

    def request(self) -> httpx.Request | None:
        """The request to open the stream now, or None once it is over."""
        if self.finished:
            return None
        left = remaining(self.deadline, self.path)
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        timeout = httpx.Timeout(self.api.seconds, read=min(STREAM_READ_TIMEOUT, left))
        return self.api.request(
            "GET", self.path, params=self.params, headers=headers, timeout=timeout
        )

    @property
    def delay(self) -> float:
        """Seconds to wait before reopening: none at first, then a short backoff."""
        return 0.0 if self.failures == 0 else min(0.5 * 2**self.failures, 5.0)

    def opened(self, response: httpx.Response) -> None:
        """Check the answer (its body read if it is an error) before reading lines."""
        check(response)
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            raise StreamUnavailable(
                response.status_code, "not_an_event_stream", f"{self.path} is no event stream"
            )
        self.parser = SseParser()

    def feed(self, line: str) -> ServerEvent | None:
        event = self.parser.feed(line)
        if event is None:
            return None
        if event.id is not None:
            self.last_event_id = event.id
        self.failures = 0
        if event.event == "end":
            self.finished = True
        return event

    def closed(self) -> None:
        """The server closed the stream: over for a followed log, a break before `end`."""
        if self.ends_with_close:
            self.finished = True
        elif not self.finished:
            self.failed(None)

    def failed(self, exc: Exception | None) -> None:
        self.failures += 1
        if self.failures > self.RETRIES:
            raise CrucibleConnectionError(
                f"the event stream {self.path} broke {self.failures} times in a row: {exc}"
            ) from exc
