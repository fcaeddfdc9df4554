"""Dispatch latency: how long a tiny job waits, from its submission to running and to
succeeded, against a bare Celery task sent to its start on the same broker (the anchor: what
the broker and Celery cost before Crucible does anything).

Real processes (uvicorn and one Celery worker, as `make run` starts them), embedded (SQLite,
kombu's SQLAlchemy transport, artifacts in a folder) and PostgreSQL + Redis (a fresh database
on 127.0.0.1:5432, Redis database 9 under a key prefix of its own, artifacts in a folder);
the bare task runs on Crucible's own Celery configuration (broker, transport, acks-late,
prefetch 1), in a worker of its own. Jobs go one at a time, after a pause, so each finds the
worker idle, as a small job on a quiet service does. A job's times come from its own
timestamps (`started_at`, `finished_at`) against the client's clock just before the POST;
the bare task records `time.time()` as it starts. Targets: submit to succeeded under 50 ms
(p50) on PostgreSQL + Redis, under 200 ms embedded.

`python -m bench.dispatch` (or `python -m bench bench.dispatch`); `JOBS` jobs per measure.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path

import numpy as np

from store.settings import Settings
from tests.conftest import POSTGRES_ADMIN_URL, fresh_postgres_database
from tests.integration.conftest import STACK_SETTINGS
from tests.integration.stack import ROOT, Stack

JOBS = 30
WARM_UP = 3  # first jobs of a fresh process, not counted (imports, connections, caches)
TINY_VI = {"env": {"kind": "grid", "layout": ["S..", "..G"]}}
REDIS_URL = "redis://127.0.0.1:6379/9"  # the test suite's database; keys under our prefix
BARE_TASK = "bench.bare"
Latencies = list[float]


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def pause(rng: random.Random) -> None:
    """Between two jobs: the worker is idle again (done with the last job's clean-up, which
    outlasts the job itself), at a random point of its polling."""
    time.sleep(rng.uniform(0.3, 0.6))


def service_env(var_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in STACK_SETTINGS}
    env |= {"VAR_DIR": str(var_dir), "DEVICE": "cpu", "OMP_NUM_THREADS": "1"}
    return env | {k.upper(): v for k, v in settings.items() if v}


def epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


# -- Crucible --------------------------------------------------------------------------------
def measure_crucible(stack: Stack, jobs: int) -> tuple[Latencies, Latencies]:
    """Submit-to-running and submit-to-succeeded of `jobs` tiny value-iteration jobs."""
    rng = random.Random(0)
    to_running, to_succeeded = [], []
    for n in range(WARM_UP + jobs):
        pause(rng)
        submitted = time.time()
        job_id = stack.submit("value_iteration", TINY_VI)["id"]
        while (job := stack.job(job_id))["status"] in ("queued", "running"):
            time.sleep(0.005)
        assert job["status"] == "succeeded", job
        if n >= WARM_UP:
            to_running.append(epoch(job["started_at"]) - submitted)
            to_succeeded.append(epoch(job["finished_at"]) - submitted)
    return to_running, to_succeeded


@contextmanager
def crucible(name: str, var_dir: Path, **settings: str) -> Iterator[Stack]:
    """The API and a worker (`tests.integration.stack`), with the service's default settings
    but for `settings`; SQLite under `var_dir` unless `database_url` says otherwise."""
    database_url = settings.get("database_url") or f"sqlite:///{var_dir / 'crucible.sqlite'}"
    stack = Stack(name, var_dir, service_env(var_dir, **settings), database_url)
    try:
        yield stack.start()
    finally:
        stack.stop()


# -- the anchor: a bare Celery task ------------------------------------------------------------
def bare_worker() -> None:
    """`python -m bench.dispatch bare-worker`: Crucible's Celery app (settings from the
    environment) without its tasks, running one that appends to $BENCH_OUT how long after
    its sending it started."""
    from worker.app import app

    out = Path(os.environ["BENCH_OUT"])

    @app.task(name=BARE_TASK)
    def bare(sent: float) -> None:
        started = time.time()
        with out.open("a") as file:
            file.write(f"{started - sent}\n")

    app.conf.include = ()  # no sweeper, no database: Celery alone
    options = ["--pool=solo", "--queues=cpu", "--loglevel=INFO"]
    app.worker_main(["worker", *options, "--without-gossip", "--without-mingle"])


def measure_bare(var_dir: Path, jobs: int, **settings: str) -> Latencies:
    """Send-to-start of `jobs` bare tasks through Crucible's Celery configuration."""
    from worker.app import create_celery

    out, log = var_dir / "bare.out", var_dir / "bare.log"
    env = service_env(var_dir, **settings) | {"BENCH_OUT": str(out)}
    with log.open("ab") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-m", "bench.dispatch", "bare-worker"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        Stack.wait_until(lambda: b" ready." in log.read_bytes(), 90, "the bare worker")
        lowered = {k.lower(): v for k, v in env.items()}
        app = create_celery(Settings.model_validate(lowered))
        rng = random.Random(0)
        for n in range(WARM_UP + jobs):
            pause(rng)
            app.send_task(BARE_TASK, args=[time.time()], queue="cpu")
            wait_for(partial(has_started, out, n + 1), 30)
        app.close()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    return [float(x) for x in out.read_text().split()][WARM_UP:]


def has_started(out: Path, tasks: int) -> bool:
    return out.exists() and len(out.read_text().split()) >= tasks


def wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the bare task did not start")
        time.sleep(0.001)


def forget_redis_keys(prefix: str) -> None:
    """Our own keys only: the database is shared with other runs."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


# -- the table ---------------------------------------------------------------------------------
def p(values: Latencies, q: float) -> float:
    return float(np.percentile(values, q)) * 1e3


def row(name: str, running: Latencies, succeeded: Latencies, bare: Latencies, target: int) -> None:
    ratio = p(running, 50) / p(bare, 50)
    verdict = "meets" if p(succeeded, 50) < target else "MISSES"
    print(
        f"{name:<16} submit->running {p(running, 50):7.1f} / {p(running, 95):7.1f} ms"
        f" | submit->succeeded {p(succeeded, 50):7.1f} / {p(succeeded, 95):7.1f} ms"
        f" | bare Celery send->start {p(bare, 50):6.1f} / {p(bare, 95):6.1f} ms"
        f" | running x{ratio:5.1f} of bare | {verdict} the {target} ms target",
        flush=True,
    )


def embedded(root: Path, jobs: int) -> None:
    bare = measure_bare(root / "embedded-bare", jobs)
    with crucible("embedded", root / "embedded") as stack:
        running, succeeded = measure_crucible(stack, jobs)
    row("embedded", running, succeeded, bare, target=200)


def postgres_redis(root: Path, jobs: int) -> None:
    if not (reachable("127.0.0.1", 5432) and reachable("127.0.0.1", 6379)):
        print(f"postgres+redis   skipped: no PostgreSQL ({POSTGRES_ADMIN_URL}) or Redis here")
        return
    prefix = f"crucible-bench-{uuid.uuid4().hex[:12]}:"
    broker = {"broker_url": REDIS_URL, "broker_key_prefix": prefix}
    try:
        bare = measure_bare(root / "pg-bare", jobs, **broker)
        with ExitStack() as resources:
            database_url = resources.enter_context(fresh_postgres_database())
            stack = resources.enter_context(
                crucible("postgres-redis", root / "pg", database_url=database_url, **broker)
            )
            running, succeeded = measure_crucible(stack, jobs)
    finally:
        forget_redis_keys(prefix)
    row("postgres+redis", running, succeeded, bare, target=50)


def main() -> None:
    jobs = int(os.environ.get("JOBS", JOBS))
    print(f"tiny value_iteration job, {jobs} each; p50 / p95", flush=True)
    with tempfile.TemporaryDirectory(prefix="crucible-bench-") as tmp:
        root = Path(tmp)
        for folder in ("embedded", "embedded-bare", "pg", "pg-bare"):
            (root / folder).mkdir()
        embedded(root, jobs)
        postgres_redis(root, jobs)


if __name__ == "__main__":
    if sys.argv[1:] == ["bare-worker"]:
        bare_worker()
    else:
        main()
