"""A job's own log: the records its run emits, kept for `GET /v1/jobs/{id}/logs`, and the
progress lines that say how a run is going, in the worker's log and the job's.

`JobLogHandler` keeps a job's records until `JobHooks` writes them, in the same fenced
transaction as the metric points: the lines the worker writes for the job (`JobHooks.note`:
attempt started, resumed, progress, warnings, stops), whatever the worker's LOG_LEVEL, and,
while it sits on the root logger, the records of `ml` from the threads that work for the job
(the training loop's and its heartbeat's). A worker's other lines (the sweeper, Celery, a
database outage naming its host) stay in the worker's log: the job's log is shown to the
client, so it holds nothing about the server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from store.tables import utcnow

MAX_RECORDS = 10_000  # per attempt: a run that logs more is cut, with one line that says so
MAX_MESSAGE = 4_000  # characters of one record (a traceback included)
SHOWN_METRICS = 4  # latest metric values a progress line carries


class JobLogHandler(logging.Handler):
    """Keeps INFO and above from the threads it watches, until `JobHooks` writes them."""

    def __init__(self, attempt: int, worker: str | None) -> None:
        super().__init__(level=logging.INFO)
        self.attempt = attempt
        self.worker = worker
        self._threads: set[int] = set()
        self._records: list[dict[str, Any]] = []
        self._kept = 0
        self._guard = threading.Lock()

    def watch(self, thread_id: int | None) -> None:
        if thread_id is not None:
            self._threads.add(thread_id)

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread in self._threads and record.name.split(".")[0] == "ml":
            self.add(record.levelname, record.name, self._message(record))

    def add(self, level: str, logger: str, message: str) -> None:
        with self._guard:
            self._kept += 1
            if self._kept > MAX_RECORDS + 1:
                return
            if self._kept == MAX_RECORDS + 1:
                message = f"more than {MAX_RECORDS} records: the rest are in the worker's log"
            self._records.append(
                {
                    "attempt": self.attempt,
                    "worker": self.worker,
                    "created_at": utcnow(),
                    "level": level,
                    "logger": logger[:128],
                    "message": message[:MAX_MESSAGE],
                }
            )

    def _message(self, record: logging.LogRecord) -> str:
        """The message alone: a traceback names server paths, and stays in the worker's log."""
        try:
            text = record.getMessage()
        except Exception:  # a bad format string must not lose the record or break the run
            text = str(record.msg)
        return text[:MAX_MESSAGE]

    def pending(self) -> list[dict[str, Any]]:
        """A copy of what is not written yet (written ones are `drop`ped after the commit)."""
        with self._guard:
            return list(self._records)

    def drop(self, count: int) -> None:
        with self._guard:
            del self._records[:count]


def format_seconds(seconds: float) -> str:
    """1 h 02 min, 3 min 05 s, 42 s: what a person reads at a glance."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def shown_metrics(latest: Mapping[str, float], count: int = SHOWN_METRICS) -> str:
    """The latest values a person most wants: evaluations, then losses, then the rest."""

    def rank(name: str) -> tuple[int, str]:
        order = ("eval/", "losses/")
        return next((i for i, p in enumerate(order) if name.startswith(p)), len(order)), name

    names = sorted(latest, key=rank)[:count]
    return ", ".join(f"{name} {latest[name]:.4g}" for name in names)


def progress_line(step: int, total: int, eta: float | None, latest: Mapping[str, float]) -> str:
    """`step 5000/20000 (25%), ETA 3 min 05 s; eval/return 187.3, losses/td 0.0213`."""
    share = f" ({100 * step / total:.0f}%)" if total > 0 else ""
    line = f"step {step}/{total}{share}"
    if eta is not None:
        line += f", ETA {format_seconds(eta)}"
    metrics = shown_metrics(latest)
    return f"{line}; {metrics}" if metrics else line


class ProgressLog:
    """When to log progress: the first report, then every `every` seconds, and the last
    step; and the ETA from this attempt's speed. `unlogged` is the last report when it was
    not logged (a run that ends early, a solver that converged, says where it stopped)."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._last: float | None = None
        self._start: tuple[float, int] | None = None  # (time, step) of the first report
        self.unlogged: tuple[int, int] | None = None

    def due(self, step: int, total: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self._start is None:
            self._start = (now, step)
        if self._last is not None and now - self._last < self.every and step < total:
            self.unlogged = (step, total)
            return False
        self._last, self.unlogged = now, None
        return True

    def eta(self, step: int, total: int, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        if self._start is None or step <= self._start[1]:
            return None
        started, first = self._start
        return (now - started) / (step - first) * max(total - step, 0)
