"""Serving: Crucible's API vs a bare FastAPI app on the same network, same uvicorn.

Two real uvicorn processes on free loopback ports, started with the same flags: Crucible
(`api.main:app`, embedded mode: SQLite, a local artifact folder) and a bare FastAPI app whose
`async def` routes answer the same `q-values` request with the same trained network computed on
the event loop, and `GET /v1/jobs/{id}` with the JSON Crucible answered for that job, held in
memory. The bare app also serves the query from a plain `def` route (`bare def`): the ceiling
for a route that computes in the thread pool, as Crucible's query routes do.

The load generator (this process) keeps N keep-alive connections busy for a few seconds per
level over raw asyncio streams (see `Connection`: httpx alone would cap it near the rates
measured), each app in turn, repeated and interleaved so a neighbour's burst of work on the
shared machine does not favour one. Printed per level: requests per second, p50 and p99
latency in ms, errors (neither 200 nor 503) and 503s (shedding: not an error, but it should
not be needed), and the ratio of Crucible's rate to the bare async app's.

`python -m bench bench.serving`; `BENCH_SECONDS` (per run, default 3) and `BENCH_REPEATS`
(default 2) from the environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pydantic import BaseModel

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
BATCH = 32
DQN_CONFIG = {
    "total_steps": 600,
    "learning_starts": 100,
    "train_frequency": 50,
    "gradient_steps": 4,
    "batch_size": 32,
    "buffer_size": 1_000,
    "hidden": [64, 64],
    "eval_interval": 600,
    "eval_episodes": 1,
}
QUERY_LEVELS = (8, 32, 64, 200)
READ_LEVELS = (8, 32, 200)
UVICORN_FLAGS = ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]


class Observations(BaseModel):
    observations: list[list[float]]


# -- the bare app (run by uvicorn in its own process: `--factory bench.serving:bare_app`) ----
def bare_app() -> Any:
    """The anchor: FastAPI, `async def` routes, the same network computed on the event loop,
    a job's JSON from memory. What Crucible does beyond this is its overhead."""
    from fastapi import FastAPI

    from store.artifacts import open_artifact_store
    from store.settings import Settings

    torch_threads()
    model: Any = open_artifact_store(Settings()).load_model(os.environ["BENCH_MODEL_URI"])
    job = json.loads(os.environ["BENCH_JOB_JSON"])
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/models/{model_id}/q-values")
    async def q_values(model_id: str, body: Observations) -> dict[str, Any]:
        q = model.q_function(np.asarray(body.observations, dtype=np.float32))
        return {"q_values": q.tolist(), "actions": q.argmax(axis=1).tolist()}

    @app.post("/def/v1/models/{model_id}/q-values")
    def q_values_in_a_thread(model_id: str, body: Observations) -> dict[str, Any]:
        q = model.q_function(np.asarray(body.observations, dtype=np.float32))
        return {"q_values": q.tolist(), "actions": q.argmax(axis=1).tolist()}

    @app.get("/v1/jobs/{job_id}")
    async def get_job(job_id: str) -> dict[str, Any]:
        return dict(job)

    return app


def torch_threads() -> None:
    import torch

    torch.set_num_threads(1)


# -- set-up: a trained DQN in an embedded Crucible ---------------------------------------------
def prepare(root: Path) -> tuple[dict[str, str], str, str, str]:
    """Migrate, train a small DQN in-process; the env both servers run with, the model id,
    its job id and its artifact URI."""
    from store import jobs, models
    from store.db import session_factory, session_scope
    from store.settings import Settings
    from tests.helpers import migrate
    from worker.runner import run_job

    url = f"sqlite:///{root / 'crucible.sqlite'}"
    migrate(url)
    settings = Settings(var_dir=root, database_url=url)
    with session_scope(session_factory(url)) as session:
        job = jobs.create_job(session, algorithm="dqn", config=DQN_CONFIG, seed=0, queue="cpu")
        job_id = job.id
    assert run_job(job_id, settings, worker="bench").startswith("succeeded"), "training failed"
    with session_scope(session_factory(url)) as session:
        row = models.model_of_job(session, job_id)
        assert row is not None
        model_id, uri = row.id, row.artifact_uri
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "BROKER_", "ARTIFACT_", "S3_", "AWS_"))
    }
    env |= {"VAR_DIR": str(root), "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    env |= {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return env, model_id, job_id, uri


@contextmanager
def server(target: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """A uvicorn process serving `target`; its base URL while the block runs."""
    from tests.integration.stack import free_port

    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(BIN / "uvicorn"), *target, *UVICORN_FLAGS, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{target} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- the load generator ------------------------------------------------------------------------
@dataclass
class Result:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    shed: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    slowest: dict[int, float] = field(default_factory=dict)  # by status
    shed_without_retry_after: int = 0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def quantile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        return float(np.quantile(self.latencies, q))


@dataclass(frozen=True)
class Work:
    method: str
    path: str
    body: bytes | None = None

    def request(self, host: str) -> bytes:
        head = f"{self.method} {self.path} HTTP/1.1\r\nHost: {host}\r\n"
        if self.body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(self.body)}\r\n"
        return (head + "\r\n").encode() + (self.body or b"")


class Connection:
    """One keep-alive HTTP/1.1 connection, as lean as a client can be: a prepared request
    written, the status line and headers parsed, the body read by its length. httpx spends
    about 0.7 ms of CPU per request here, which capped the generator near 1,400 requests a
    second on this machine's cores, shared with the servers under test."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """The status and the (lower-cased) head of the answer to `request`."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        length = lower.find(b"\r\ncontent-length:")
        if length >= 0:
            end = lower.index(b"\r\n", length + 2)
            await self.reader.readexactly(int(lower[length + 17 : end]))
        elif b"transfer-encoding: chunked" in lower:
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                await self.reader.readexactly(size + 2)
            await self.reader.readuntil(b"\r\n")
        if b"\r\nconnection: close" in lower:
            self.close()
        return status, lower

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _drive(base: str, work: Work, clients: int, seconds: float, warmup: float) -> Result:
    url = httpx.URL(base)
    host, port = url.host, url.port or 80
    request = work.request(f"{host}:{port}")
    result = Result(seconds)
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    async def one_client() -> None:
        connection = Connection(host, port)
        while (t0 := time.perf_counter()) < stop_at:
            try:
                status, head = await asyncio.wait_for(connection.send(request), 30)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                connection.close()
                status, head = 0, b""
            t1 = time.perf_counter()
            if t0 < measure_from:
                continue
            result.statuses[status] += 1
            result.slowest[status] = max(result.slowest.get(status, 0.0), t1 - t0)
            if status == 200:
                result.latencies.append(t1 - t0)
            elif status == 503:
                result.shed += 1
                result.shed_without_retry_after += b"\r\nretry-after:" not in head
            else:
                result.errors += 1
        connection.close()

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return result


def drive(base: str, work: Work, clients: int, seconds: float, warmup: float = 0.5) -> Result:
    """`clients` connections sending `work` for `seconds` (after `warmup`), from a loop of its
    own (uvloop when installed, as uvicorn's)."""
    run: Callable[[Coroutine[Any, Any, Result]], Result] = asyncio.run
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        pass
    return run(_drive(base, work, clients, seconds, warmup))


# -- the comparison ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    label: str
    work: Work
    clients: int
    thread_anchor: bool  # also run the bare app's plain `def` route


def cases(model_id: str, job_id: str, body: bytes) -> list[Case]:
    query = Work("POST", f"/v1/models/{model_id}/q-values", body)
    read = Work("GET", f"/v1/jobs/{job_id}")
    return [Case(f"q-values b{BATCH} c{n}", query, n, True) for n in QUERY_LEVELS] + [
        Case(f"GET job c{n}", read, n, False) for n in READ_LEVELS
    ]


def summary(results: list[Result]) -> str:
    rate = statistics.median(r.rate for r in results)
    p50 = statistics.median(r.quantile(0.5) for r in results) * 1e3
    p99 = statistics.median(r.quantile(0.99) for r in results) * 1e3
    errors, shed = sum(r.errors for r in results), sum(r.shed for r in results)
    return f"{rate:6.0f}/s {p50:6.1f} {p99:6.1f} err {errors} 503 {shed}"


def compare(case: Case, ours: str, bare: str, seconds: float, repeats: int) -> str:
    runs = [("crucible", ours, case.work), ("bare", bare, case.work)]
    if case.thread_anchor:
        runs.append(("bare def", bare, replace(case.work, path="/def" + case.work.path)))
    results: dict[str, list[Result]] = {name: [] for name, _, _ in runs}
    for i in range(repeats):
        for name, base, work in runs if i % 2 == 0 else runs[::-1]:
            results[name].append(drive(base, work, case.clients, seconds))
    ratio = statistics.median(r.rate for r in results["crucible"]) / statistics.median(
        r.rate for r in results["bare"]
    )
    columns = " | ".join(f"{name} {summary(r)}" for name, r in results.items())
    return f"{case.label:<18} {columns} | ratio x{ratio:4.2f}"


def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "3"))
    repeats = int(os.environ.get("BENCH_REPEATS", "2"))
    with tempfile.TemporaryDirectory(prefix="crucible-bench-") as tmp:
        root = Path(tmp)
        env, model_id, job_id, uri = prepare(root)
        observations = np.random.default_rng(0).normal(size=(BATCH, 4)).round(4).tolist()
        body = json.dumps({"observations": observations}).encode()
        with server(["api.main:app"], env, root / "crucible.log") as ours:
            job_json = httpx.get(f"{ours}/v1/jobs/{job_id}").text
            bare_env = env | {"BENCH_MODEL_URI": uri, "BENCH_JOB_JSON": job_json}
            bare_target = ["--factory", "bench.serving:bare_app"]
            with server(bare_target, bare_env, root / "bare.log") as bare:
                print(
                    f"load average {os.getloadavg()[0]:.2f}; {seconds:g} s per run, {repeats} "
                    "repeats, interleaved; each column: rate, p50 ms, p99 ms, errors, 503s",
                    flush=True,
                )
                for case in cases(model_id, job_id, body):
                    print(compare(case, ours, bare, seconds, repeats), flush=True)


if __name__ == "__main__":
    main()
