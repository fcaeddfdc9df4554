"""The API under load through a real uvicorn: 200 clients at once querying one model are all
answered (a quick 503 with Retry-After at worst, never a 500), and /healthz answers all along;
a chunked body over the limit is refused before it is read, and its connection closed.

The load comes from `bench.serving`'s generator (keep-alive connections over raw asyncio
streams), which costs the server's shared cores far less than 200 httpx clients would."""

from __future__ import annotations

import json
import select
import socket
import threading
import time

import httpx
import numpy as np
import pytest

from bench.serving import Work, drive
from tests.integration.stack import Stack
from tests.tiny_configs import TINY_CONFIGS

pytestmark = pytest.mark.integration


def test_200_clients_query_one_model(stack: Stack) -> None:
    job = stack.run("dqn", TINY_CONFIGS["dqn"])
    observations = np.random.default_rng(0).normal(size=(32, 4)).round(4).tolist()
    body = json.dumps({"observations": observations}).encode()
    work = Work("POST", f"/v1/models/{job['model_id']}/q-values", body)
    base = str(stack.client.base_url)

    health: list[tuple[int, float]] = []
    done = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=base, timeout=5) as client:
            while not done.is_set():
                start = time.monotonic()
                try:
                    status = client.get("/healthz").status_code
                except httpx.HTTPError:
                    status = 0
                health.append((status, time.monotonic() - start))
                done.wait(0.1)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        result = drive(base, work, clients=200, seconds=3, warmup=0.5)
    finally:
        done.set()
        prober.join()

    assert set(result.statuses) <= {200, 503}, result.statuses
    assert result.statuses[200] > 0
    assert result.shed_without_retry_after == 0
    assert result.slowest[200] < 5, result.slowest  # nothing queued until it times out
    assert result.slowest.get(503, 0) < 3, result.slowest  # shed quickly
    assert health and {status for status, _ in health} == {200}, health
    assert max(seconds for _, seconds in health) < 1, health
    r = stack.client.post(work.path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200 and len(r.json()["q_values"]) == 32


def test_chunked_body_over_the_limit_is_refused_unread(stack: Stack) -> None:
    """Chunks of 1 MiB are offered until the server answers: 413 once the body passes the
    JSON limit (16 MiB), and the connection closed rather than read to its end. (The server
    closes with the rest of the body unread, so the kernel may reset the connection before
    the client reads the 413: a client sending a body past the limit sees one or the other.)"""
    host, port = stack.client.base_url.host, stack.client.base_url.port
    assert port is not None
    chunk = b"%x\r\n%s\r\n" % (1 << 20, b"x" * (1 << 20))
    sent = 0
    answer = b""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/jobs HTTP/1.1\r\nHost: crucible\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        try:
            while sent < 300 << 20:
                readable, writable, _ = select.select([sock], [sock], [], 10)
                if readable:
                    break
                assert writable, "the server neither reads nor answers"
                sock.sendall(chunk)
                sent += 1 << 20
            while data := sock.recv(65536):
                answer += data
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert 16 << 20 <= sent < 64 << 20  # read past the limit, then no more
    if answer:
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 413"), answer[:300]
        assert b"connection: close" in head and b'"request_too_large"' in answer
    assert stack.client.get("/healthz").status_code == 200


def test_a_burst_of_retried_submissions_runs_each_job_once(stack: Stack) -> None:
    """40 submissions with 20 Idempotency-Keys, all at once, each retried on a 503: every
    answer names the job of its key, 20 jobs exist and each runs once."""
    spec = {"algorithm": "value_iteration", "config": {"env": {"kind": "frozen_lake"}}}
    base = str(stack.client.base_url)
    keys = [f"burst-{stack.name}-{i}" for i in range(20)] * 2

    def submit(key: str) -> str:
        with httpx.Client(base_url=base, timeout=60) as client:
            while True:
                r = client.post("/v1/jobs", json=spec, headers={"Idempotency-Key": key})
                if r.status_code != 503:
                    assert r.status_code == 202, r.text
                    return str(r.json()["id"])
                time.sleep(float(r.headers.get("retry-after", "1")))

    answers: dict[str, set[str]] = {}
    lock = threading.Lock()

    def worker(key: str) -> None:
        job_id = submit(key)
        with lock:
            answers.setdefault(key, set()).add(job_id)

    threads = [threading.Thread(target=worker, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(len(ids) == 1 for ids in answers.values()) and len(answers) == 20
    for (job_id,) in answers.values():
        done = stack.wait_for(job_id)
        assert done["status"] == "succeeded" and done["attempt"] == 1, done
