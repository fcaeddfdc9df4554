"""`GET /metrics` in Prometheus's text format: what the service is doing, for dashboards and
alerts.

Two kinds of figures:
- read from the database at each scrape (`store.figures`), the same from every API process:
  `crucible_jobs` by status and algorithm, `crucible_queue_depth` by queue,
  `crucible_workers_busy` and `crucible_worker_heartbeat_age_seconds` (workers running a
  job), `crucible_workers_up` by queue (every worker up, busy or idle, from its beats), and
  `crucible_job_duration_seconds`, a histogram of the training jobs that finished in the last
  24 hours;
- counted by this API process since it started: `crucible_query_seconds` (latency of each
  declared query, by outcome), `crucible_query_errors_total` (by query and error code), and
  the model cache's `crucible_model_cache_hits_total`, `..._loads_total` and `..._models`.

A worker exports its own figures (jobs run, their outcomes and durations) on
`WORKER_METRICS_PORT` (`worker.metrics`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from api.model_cache import ModelCache
from store.figures import Figures

# Seconds: from a cached Q-value lookup to a t-SNE of thousands of points or a long run.
QUERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)

# Counted in this process: one registry for every app it builds (tests build several).
PROCESS = CollectorRegistry(auto_describe=True)
QUERY_SECONDS = Histogram(
    "crucible_query_seconds",
    "Time to answer a declared query (a heavy one: to queue it), by outcome.",
    ["query", "outcome"],
    buckets=QUERY_BUCKETS,
    registry=PROCESS,
)
QUERY_ERRORS = Counter(
    "crucible_query_errors",
    "Declared queries answered with an error, by error code.",
    ["query", "code"],
    registry=PROCESS,
)


@contextmanager
def timed_query(name: str) -> Iterator[Callable[[str], None]]:
    """Time a query's answer; the body calls the yielded function with its outcome ("ok",
    "queued"); an exception counts as an error of its `code` and is raised on."""
    outcome = ["ok"]
    started = time.perf_counter()
    try:
        yield lambda said: outcome.__setitem__(0, said)
    except Exception as exc:
        outcome[0] = "error"
        QUERY_ERRORS.labels(name, str(getattr(exc, "code", "internal"))).inc()
        raise
    finally:
        QUERY_SECONDS.labels(name, outcome[0]).observe(time.perf_counter() - started)


class Snapshot(Collector):
    """The figures read at this scrape, and the model cache's counts."""

    def __init__(self, figures: Figures, cache: ModelCache) -> None:
        self.figures, self.cache = figures, cache

    def collect(self) -> Iterator[Metric]:
        f = self.figures
        yield gauge(
            "crucible_jobs",
            "Training jobs by status and algorithm.",
            ["status", "algorithm"],
            f.jobs,
        )
        yield gauge("crucible_queue_depth", "Jobs waiting, by queue.", ["queue"], by_one(f.queued))
        yield GaugeMetricFamily(
            "crucible_workers_busy", "Workers running a job.", value=len(f.heartbeats)
        )
        yield gauge(
            "crucible_workers_up",
            "Workers up (busy or idle), by queue served.",
            ["queue"],
            by_one(f.workers_up),
        )
        yield gauge(
            "crucible_worker_heartbeat_age_seconds",
            "Seconds since each busy worker's last heartbeat.",
            ["worker"],
            by_one(f.heartbeats),
        )
        durations = HistogramMetricFamily(
            "crucible_job_duration_seconds",
            "Wall-clock time of the training jobs that finished in the last 24 hours.",
            labels=["algorithm"],
        )
        for algorithm, seconds in sorted(f.durations.items()):
            durations.add_metric([algorithm], buckets(seconds), sum_value=sum(seconds))
        yield durations
        hits, loads, held = self.cache.counts()
        yield counter("crucible_model_cache_hits", "Queries that found their model loaded.", hits)
        yield counter("crucible_model_cache_loads", "Models loaded from the artifact store.", loads)
        yield GaugeMetricFamily("crucible_model_cache_models", "Models held in memory.", held)


def gauge(name: str, documentation: str, labels: list[str], values: Mapping[Any, float]) -> Metric:
    """A gauge with one sample per key, a tuple of label values, in a stable order."""
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def by_one(values: Mapping[str, float]) -> dict[tuple[str, ...], float]:
    """Values keyed by one label, as `gauge` takes them."""
    return {(key,): value for key, value in values.items()}


def counter(name: str, documentation: str, value: float) -> Metric:
    return CounterMetricFamily(name, documentation, value=value)


def buckets(seconds: list[float]) -> list[tuple[str, float]]:
    """Cumulative counts of `JOB_BUCKETS`, then +Inf: a histogram of these durations."""
    found: list[tuple[str, float]] = [
        (repr(bound), float(sum(1 for s in seconds if s <= bound))) for bound in JOB_BUCKETS
    ]
    return [*found, ("+Inf", float(len(seconds)))]


def exposition(figures: Figures, cache: ModelCache) -> bytes:
    """The text Prometheus scrapes: this process's counters, then this scrape's figures."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(Snapshot(figures, cache))
    return generate_latest(PROCESS) + generate_latest(scrape)
