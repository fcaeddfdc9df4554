"""The API under load and faults, in-process: bodies over the limit refused without being read,
a database outage answered 503 and recovered from without a restart, a 500 that closes its
connection, excess requests shed with 503 and Retry-After, readiness that names what failed,
and no request left waiting on the connection pool while another waits on a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy.exc import IntegrityError

from api.model_cache import ModelCache
from ml.core.model import TrainedModel
from store.db import session_factory
from tests.api.conftest import Api, make_api
from tests.helpers import migrate

LIMIT = 64 * 1024


@pytest.fixture
def small(tmp_path: Path) -> Api:
    """A service that takes JSON bodies of at most 64 KiB."""
    return Api(make_api(tmp_path).settings.model_copy(update={"max_request_bytes": LIMIT}))


def test_chunked_body_over_the_limit_is_413(small: Api) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"algorithm": "dqn", "name": "'
        for _ in range(32):
            yield b"x" * 8192

    json_type = {"content-type": "application/json"}
    r = small.client.post("/v1/jobs", content=chunks(), headers=json_type)
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "request_too_large"
    assert r.headers["connection"] == "close"
    assert small.client.get("/v1/jobs").json()["count"] == 0
    # Under the limit, a chunked body is read as usual.
    r = small.client.post(
        "/v1/jobs",
        content=iter([b'{"algorithm": "dqn",', b' "config": {"total_steps": 500}}']),
        headers=json_type,
    )
    assert r.status_code == 202, r.text


def test_a_huge_chunked_body_is_not_read(small: Api) -> None:
    """300 MB offered in 64 KiB chunks: the app stops asking for more just past the limit."""
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(300 * 16):
            pulled += 1
            yield b"x" * 65536

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=small.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.post(
                "/v1/jobs", content=body(), headers={"content-type": "application/json"}
            )

    r = anyio.run(post)
    assert r.status_code == 413 and r.json()["code"] == "request_too_large"
    assert pulled <= LIMIT // 65536 + 2


def test_multipart_limit_is_the_upload_limit(api: Api) -> None:
    declared = api.settings.max_upload_bytes + 1024 * 1024
    r = api.client.post(
        "/v1/datasets",
        headers={
            "content-type": "multipart/form-data; boundary=x",
            "content-length": str(declared),
        },
        content=b"--x--\r\n",
    )
    assert r.status_code == 413 and r.json()["code"] == "request_too_large"


def outage_api(root: Path) -> tuple[Api, Path]:
    """A service whose SQLite database lives in a folder of its own, so the folder can be
    moved away: with its pooled connections closed, the database cannot be opened."""
    folder = root / "db"
    folder.mkdir()
    url = f"sqlite:///{folder / 'crucible.sqlite'}"
    migrate(url)
    return Api(make_api(root).settings.model_copy(update={"database_url": url})), folder


def test_database_outage_is_503_and_recovers(tmp_path: Path) -> None:
    api, folder = outage_api(tmp_path)
    job = api.submit("dqn", {"total_steps": 500})
    engine = session_factory(api.settings.resolved_database_url).kw["bind"]

    folder.rename(tmp_path / "db-away")  # the database is gone...
    engine.dispose()  # ...and so are the connections opened before
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/v1/jobs", {}),
        ("GET", f"/v1/jobs/{job['id']}", {}),
        ("POST", "/v1/jobs", {"json": {"algorithm": "dqn"}}),
        ("POST", f"/v1/models/{job['id']}/q-values", {"json": {"observations": [[0] * 4]}}),
    ]
    for method, url, kwargs in requests:
        r = api.client.request(method, url, **kwargs)
        assert r.status_code == 503, (url, r.text)
        assert r.json()["code"] == "database_unavailable"
        assert int(r.headers["retry-after"]) >= 1
    assert api.client.get("/healthz").status_code == 200
    ready = api.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["code"] == "not_ready"
    assert ready.json()["checks"]["database"]["status"] == "failed"

    (tmp_path / "db-away").rename(folder)  # back: the next request reconnects by itself
    assert api.client.get(f"/v1/jobs/{job['id']}").json()["status"] == "queued"
    assert api.client.get("/readyz").status_code == 200


def test_a_500_closes_its_connection(api: Api) -> None:
    def boom() -> None:
        raise RuntimeError("a bug")

    async def db_bug() -> None:
        raise IntegrityError("INSERT ...", {}, Exception("a constraint the code forgot"))

    api.app.add_api_route("/test/boom", boom)
    api.app.add_api_route("/test/db-bug", db_bug)
    for url in ("/test/boom", "/test/db-bug"):
        r = api.client.get(url)
        assert r.status_code == 500
        assert r.json()["code"] == "internal_error"
        assert "a bug" not in r.text and "constraint" not in r.text
        assert r.headers["connection"] == "close"
    assert api.client.get("/healthz").status_code == 200


def test_excess_requests_are_shed_quickly(tmp_path: Path) -> None:
    """One request at a time: while one is held, four more wait their turn (a second at
    most) and anything beyond is answered 503 at once; /healthz answers throughout."""
    api = Api(make_api(tmp_path).settings.model_copy(update={"api_max_in_flight": 1}))
    entered, release = threading.Event(), threading.Event()

    def hold() -> dict[str, str]:
        entered.set()
        release.wait(30)
        return {"status": "released"}

    api.app.add_api_route("/test/hold", hold)

    def timed(url: str) -> tuple[int, float, httpx.Headers]:
        start = time.monotonic()
        r = api.client.get(url)
        return r.status_code, time.monotonic() - start, r.headers

    with ThreadPoolExecutor(8) as pool:
        held = pool.submit(api.client.get, "/test/hold")
        assert entered.wait(10)
        waiting = [pool.submit(timed, "/v1/algorithms") for _ in range(4)]
        time.sleep(0.2)  # they are in line
        status, seconds, headers = timed("/v1/algorithms")  # the line is full
        assert status == 503 and headers["retry-after"] == "1"
        assert seconds < 0.5
        assert timed("/healthz")[0] == 200
        for future in waiting:  # nobody left: each gave up after its wait
            status, seconds, headers = future.result()
            assert status == 503 and headers["retry-after"] == "1"
            assert 0.5 < seconds < 5
        release.set()
        assert held.result().status_code == 200
    assert api.client.get("/v1/algorithms").status_code == 200


def test_a_request_in_line_gets_the_freed_slot(tmp_path: Path) -> None:
    api = Api(make_api(tmp_path).settings.model_copy(update={"api_max_in_flight": 1}))
    entered = threading.Event()

    def brief() -> dict[str, str]:
        entered.set()
        time.sleep(0.3)
        return {"status": "done"}

    api.app.add_api_route("/test/brief", brief)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(api.client.get, "/test/brief")
        assert entered.wait(10)
        second = api.client.get("/v1/algorithms")  # waits for the slot, then is served
        assert second.status_code == 200
        assert first.result().status_code == 200


def test_pool_of_one_connection_serves_many_clients(tmp_path: Path) -> None:
    """fastapi#3205: with more requests than connections, a request holding a connection
    must never wait for a thread that another request holds while it waits for that
    connection. One connection, 24 clients at once: all answered."""
    api = Api(
        make_api(tmp_path).settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0})
    )
    job = api.submit("dqn", {"total_steps": 500})
    with ThreadPoolExecutor(24) as pool:
        codes = list(pool.map(lambda _: api.client.get(f"/v1/jobs/{job['id']}"), range(96)))
    assert {r.status_code for r in codes} == {200}


def test_readyz_reports_each_dependency(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    body = api.client.get("/readyz").json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "broker", "artifacts"}
    assert all(check["status"] == "ok" for check in body["checks"].values()), body

    broken = Api(api.settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"}))
    r = broken.client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["code"] == "not_ready" and body["status"] == "not_ready"
    assert body["checks"]["broker"]["status"] in ("failed", "timeout")
    assert body["checks"]["database"]["status"] == "ok"
    assert "broker" in body["message"]


class Slow(TrainedModel):
    pass


def test_a_cold_model_asked_for_at_once_is_loaded_once() -> None:
    loads: list[str] = []

    def loader(path: str) -> TrainedModel:
        loads.append(path)
        time.sleep(0.2)
        return Slow({})

    cache = ModelCache(2, loader=loader)
    with ThreadPoolExecutor(8) as pool:
        models: list[Any] = list(pool.map(lambda _: cache.get("a", "/a"), range(8)))
    assert loads == ["/a"]
    assert all(m is models[0] for m in models)
