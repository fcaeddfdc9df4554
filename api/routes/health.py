"""Liveness and readiness probes (docker-compose health checks use /readyz).

`/healthz` says the process serves HTTP: it runs on the event loop, touches nothing and is
never shed, so it answers however busy the API is. `/readyz` says whether the API can do its
work: it checks the database (a query on `jobs`, so a missing migration shows), the broker and
the artifact store at once, each in a thread of the probes' own and given a short time, and
answers 200 `ready` or 503 `not_ready` with what each check found.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

import anyio
import anyio.to_thread
import kombu
from anyio.lowlevel import RunVar
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from api.deps import SettingsDep
from api.errors import error_body
from api.strict_input import StrictRoute
from store.artifacts import ArtifactStore, ArtifactUnavailable, LocalArtifactStore
from store.db import session_factory, session_scope

router = APIRouter(tags=["health"], route_class=StrictRoute)
log = logging.getLogger(__name__)

CHECK_SECONDS = 2.0  # each check's time; a check still running then is reported `timeout`
PROBE_THREADS = 6  # threads the checks may occupy (a hung one is left behind, not waited for)
_limiter: RunVar[anyio.CapacityLimiter] = RunVar("crucible_probe_limiter")


@router.get("/healthz", summary="Liveness: the process answers HTTP")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database, the broker and the artifact store answer",
    responses={503: {"description": "Not ready; `checks` says which dependency failed."}},
)
async def readyz(request: Request, settings: SettingsDep) -> JSONResponse:
    checks: dict[str, Callable[[], None]] = {
        "database": partial(check_database, settings.resolved_database_url),
        "broker": partial(check_broker, settings.resolved_broker_url),
        "artifacts": partial(check_artifacts, request.app.state.artifacts),
    }
    results: dict[str, dict[str, Any]] = {}

    async def run(name: str, check: Callable[[], None]) -> None:
        results[name] = await timed(name, check)

    async with anyio.create_task_group() as group:
        for name, check in checks.items():
            group.start_soon(run, name, check)
    results = {name: results[name] for name in checks}
    failed = [f"{name} ({r['error']})" for name, r in results.items() if r["status"] != "ok"]
    if not failed:
        return JSONResponse({"status": "ready", "checks": results})
    return JSONResponse(
        error_body("not_ready", f"not ready: {', '.join(failed)}")
        | {"status": "not_ready", "checks": results},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def probe_limiter() -> anyio.CapacityLimiter:
    try:
        return _limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(PROBE_THREADS)
        _limiter.set(limiter)
        return limiter


async def timed(name: str, check: Callable[[], None]) -> dict[str, Any]:
    """Run `check` in a probe thread: `ok`, `failed` (the exception's type; its message,
    which may name hosts, goes to the log) or `timeout`, and how long it took."""
    start = time.perf_counter()
    status, error = "ok", ""
    try:
        with anyio.fail_after(CHECK_SECONDS):
            await anyio.to_thread.run_sync(check, limiter=probe_limiter(), abandon_on_cancel=True)
    except TimeoutError:
        status, error = "timeout", f"no answer within {CHECK_SECONDS:g} s"
    except Exception as exc:
        status, error = "failed", type(exc).__name__
        log.warning("readiness: %s: %s", name, str(exc).split("\n", 1)[0])
    result: dict[str, Any] = {"status": status, "seconds": round(time.perf_counter() - start, 4)}
    if error:
        result["error"] = error
    return result


def check_database(url: str) -> None:
    with session_scope(session_factory(url)) as session:
        session.execute(text("SELECT 1 FROM jobs LIMIT 1"))


@lru_cache(maxsize=4)
def _broker_engine(url: str) -> Engine:
    connect_args = {"timeout": CHECK_SECONDS} if url.startswith("sqlite") else {}
    return create_engine(url, poolclass=NullPool, connect_args=connect_args)


def check_broker(url: str) -> None:
    if url.startswith("sqla+"):  # the embedded broker: kombu's tables in a database
        with _broker_engine(url.removeprefix("sqla+")).connect() as connection:
            connection.execute(text("SELECT 1"))
        return
    with kombu.Connection(url, connect_timeout=CHECK_SECONDS) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=CHECK_SECONDS)
        _ = connection.default_channel  # Redis: a PING


def check_artifacts(store: ArtifactStore) -> None:
    if isinstance(store, LocalArtifactStore):
        folder = store.root
        while not folder.exists():  # made at the first write
            folder = folder.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise ArtifactUnavailable(f"{folder} is not a folder this process can write")
        return
    store.exists(store.uri("readyz"))  # S3: a HEAD, so the server answers and takes the keys
