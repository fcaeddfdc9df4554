"""Plain ASGI middlewares that guard the API as a whole.

They are plain ASGI: Starlette's `BaseHTTPMiddleware` runs every request through extra tasks
and memory streams, and cost a fifth of the API's time under load. Outermost first:
- `RequestId`: every response carries `X-Request-ID`, the client's own if it sent a sensible
  one (1-128 printable ASCII characters, no spaces), else a fresh one; error bodies and the
  log lines about the request say it too (`api.errors.REQUEST_ID`).
- `ControlCharacters`: a control character (NUL above all, which PostgreSQL cannot store or
  even compare) in the path, the query string or a header is refused with 400
  `invalid_characters` before anything reads it. JSON bodies are checked by
  `api.strict_input`.
- `LoadShedding`: at most `API_MAX_IN_FLIGHT` requests are worked on at once; the next ones
  wait their turn for a moment, and are answered 503 `overloaded` with Retry-After when it
  does not come, rather than queueing until every client times out. `/healthz` is exempt.
- `InternalErrors`: an exception nothing else answered is logged and answered 500 with
  `Connection: close`, and not re-raised: a server that sees it after the response would drop
  the connection under the client's next keep-alive request.
- `BodyLimit`: a body over `MAX_REQUEST_BYTES` (JSON) or `MAX_UPLOAD_BYTES` and an envelope
  (multipart) is refused with 413 `request_too_large`: at once when its Content-Length says
  so, as soon as it passes the limit when it is streamed (chunked) without one.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection
from urllib.parse import unquote_to_bytes

import anyio.to_thread
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import REQUEST_ID, error_body, internal_error, truncated
from store.models import shown

log = logging.getLogger(__name__)


class _Ticket:
    """A request waiting for a slot; `granted` is set (under the lock) when one is handed
    over, and the future resolved on the waiter's own event loop."""

    __slots__ = ("future", "granted", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.granted = False


REQUEST_ID_HEADER = b"x-request-id"
CLIENT_REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,128}")


class RequestId:
    """See the module docstring. The id is in `REQUEST_ID` (a context variable, so the
    exception handlers, the routes in the thread pool and the inner middlewares see it) and in
    `request.state.request_id`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = client_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        header = (REQUEST_ID_HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


def client_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            return value.decode("ascii") if CLIENT_REQUEST_ID.fullmatch(value) else None
    return None


CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
CONTROL_TEXT = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_IN_HEADER = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is legal in a header


class ControlCharacters:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = control_character(scope) if scope["type"] == "http" else None
        if problem is None:
            await self.app(scope, receive, send)
            return
        field, where = problem
        message = f"{where} contains a control character (such as NUL), which nothing here accepts"
        response = JSONResponse(error_body("invalid_characters", message, field), 400)
        await response(scope, receive, send)


def control_character(scope: Scope) -> tuple[str, str] | None:
    """`(field, description)` of the first place of the request holding a control character
    (percent-encoded or not), or None."""
    if CONTROL_TEXT.search(scope["path"]):
        return "path", "the path"
    query: bytes = scope.get("query_string", b"")
    if query and CONTROL.search(unquote_to_bytes(query)):
        for pair in query.split(b"&"):
            if CONTROL.search(unquote_to_bytes(pair)):
                name = unquote_to_bytes(pair.partition(b"=")[0].replace(b"+", b" "))
                text = name.decode("utf-8", "replace")
                return truncated(text), f"query parameter {shown(text)}"
    for name, value in scope["headers"]:
        if CONTROL_IN_HEADER.search(value):
            text = name.decode("latin-1")
            return text, f"header {shown(text)}"
    return None


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


SHED_WAIT_SECONDS = 1.0
SHED_LOG_SECONDS = 10.0


class LoadShedding:
    """At most `limit` requests at once; later ones wait first come, first served, at most
    `wait` seconds and at most `queue` of them, and are otherwise answered 503 `overloaded`
    with Retry-After. It also sets the size of the thread pool that runs plain `def` routes
    and dependencies to `threads`.

    The count is shared by every event loop of the process (a test client runs several), so a
    slot freed on one loop is handed to a waiter on another with `call_soon_threadsafe`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        threads: int,
        queue: int | None = None,
        wait: float = SHED_WAIT_SECONDS,
        exempt: Collection[str] = ("/healthz",),
        exempt_when: Callable[[Scope], bool] | None = None,
    ) -> None:
        """`exempt` paths, and requests `exempt_when` says are (long streams, which wait
        rather than work and bound themselves), are not counted."""
        self.app = app
        self.limit = limit
        self.threads = threads
        self.queue = 4 * limit if queue is None else queue
        self.wait = wait
        self.exempt = frozenset(exempt)
        self.exempt_when = exempt_when
        self._lock = threading.Lock()
        self._active = 0
        self._waiting: deque[_Ticket] = deque()
        self._logged = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in self.exempt
            or (self.exempt_when is not None and self.exempt_when(scope))
        ):
            await self.app(scope, receive, send)
            return
        limiter = anyio.to_thread.current_default_thread_limiter()
        if limiter.total_tokens != self.threads:
            limiter.total_tokens = self.threads
        if not await self._admit():
            await self._refuse(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._leave()

    async def _admit(self) -> bool:
        with self._lock:
            if self._active < self.limit:  # then nobody waits: a freed slot goes to a waiter
                self._active += 1
                return True
            if len(self._waiting) >= self.queue:
                return False
            ticket = _Ticket(asyncio.get_running_loop())
            self._waiting.append(ticket)
        try:
            await asyncio.wait_for(ticket.future, self.wait)
        except (TimeoutError, asyncio.CancelledError):
            with self._lock:
                granted = ticket.granted  # a slot may have come as the wait ended
                if not granted:
                    self._waiting.remove(ticket)
            if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                if granted:
                    self._leave()
                raise
            return granted
        return True

    def _leave(self) -> None:
        with self._lock:
            if not self._waiting:
                self._active -= 1
                return
            ticket = self._waiting.popleft()  # the slot passes to it; `_active` is unchanged
            ticket.granted = True
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if ticket.loop is running:
            _wake(ticket.future)
            return
        try:
            ticket.loop.call_soon_threadsafe(_wake, ticket.future)
        except RuntimeError:  # its loop is gone, and the request with it: pass the slot on
            self._leave()

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        now = time.monotonic()
        if now - self._logged > SHED_LOG_SECONDS:
            self._logged = now
            log.warning(
                "overloaded: %d requests in progress, %d waiting; refusing more with 503",
                self._active,
                len(self._waiting),
            )
        response = JSONResponse(
            error_body(
                "overloaded",
                f"the API is working on {self.limit} requests and has more waiting; "
                "retry in a moment",
            ),
            status_code=503,
            headers={"Retry-After": "1"},
        )
        await response(scope, receive, send)


class InternalErrors:
    """The last resort: see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            if started:  # half an answer is out: all the server can do is drop the connection
                raise
            await internal_error(scope, exc)(scope, receive, send)


MULTIPART_SLACK = 64 * 1024  # room for a multipart envelope around an upload


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit} bytes")


class BodyLimit:
    """Refuse a body larger than the limit without reading it: `max_bytes` for JSON,
    `max_upload_bytes` and an envelope for multipart uploads (whose parts are counted again as
    they are read, see `api.uploads`). A declared Content-Length is checked before the app
    runs (the server never delivers more than it declares); a streamed body is counted as it
    arrives, and once over the limit the app's own answer, if any, is replaced by the 413."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: bytes | None = None
        streamed = multipart = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                streamed = True
            elif name == b"content-type":
                multipart = value[:19].lower() == b"multipart/form-data"
        limit = self.max_upload_bytes + MULTIPART_SLACK if multipart else self.max_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            message = f"request body of {int(declared)} bytes is over the limit of {limit}"
            await _too_large(message)(scope, receive, send)
            return
        if not streamed:
            await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send, limit)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        refused = started = False

        async def receive_counted() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    raise BodyTooLarge(limit)
            return message

        async def send_unless_refused(message: Message) -> None:
            nonlocal started
            if refused and not started:
                return  # the app's answer to a body it could not read: ours goes instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_counted, send_unless_refused)
        except Exception:
            if not refused or started:
                raise
        if refused and not started:
            message = f"request body is over the limit of {limit} bytes"
            await _too_large(message)(scope, receive, send)


def _too_large(message: str) -> JSONResponse:
    # The rest of the body is never read, so the connection cannot carry another request.
    return JSONResponse(
        error_body("request_too_large", message),
        status_code=413,
        headers={"Connection": "close"},
    )
