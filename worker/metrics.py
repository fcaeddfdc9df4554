"""A worker's own figures for Prometheus, served on `WORKER_METRICS_PORT` when it is set:
the jobs this process ran, by task (train, query) and outcome, how long each took, and
whether it is running one now. The API's `/metrics` reports the service as the database sees
it; these say what one worker did, including the messages it skipped (a job another worker
holds, a cancelled one) that never show in the database."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

JOB_BUCKETS = (0.1, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
RUNS = Counter(
    "crucible_worker_jobs", "Job messages this worker handled, by task and outcome.",
    ["task", "outcome"],
)  # fmt: skip
SECONDS = Histogram(
    "crucible_worker_job_seconds", "Time this worker spent on a job message, by task.",
    ["task"], buckets=JOB_BUCKETS,
)  # fmt: skip
BUSY = Gauge("crucible_worker_busy", "1 while this worker runs a job.")


def observed(task: str, run: Callable[[], str]) -> str:
    """Run one job message, counting its outcome (the first word of what `run` says:
    succeeded, failed, cancelled, skipped...; `error` when it raises) and its time."""
    started = time.perf_counter()
    outcome = "error"
    BUSY.set(1)
    try:
        said = run()
        outcome = said.split(":", 1)[0].split()[0] if said else "done"
        return said
    finally:
        BUSY.set(0)
        RUNS.labels(task, outcome).inc()
        SECONDS.labels(task).observe(time.perf_counter() - started)


def serve(port: int) -> None:
    """Serve the figures (and the process's own: memory, CPU, open files) on `port`."""
    if port:
        start_http_server(port)
        log.info("worker figures for Prometheus on port %d (/metrics)", port)
