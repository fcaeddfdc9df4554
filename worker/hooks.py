"""Training hooks backed by the database: progress, batched metrics, checkpoints, stop.

The training loop never waits on the database for `should_stop()`: a heartbeat thread renews
the job's lease and reads the cancel flag once a second, and `should_stop()` reads what it
found. Metric points are buffered and written in batches, so logging does not slow training.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from store import jobs
from store.artifacts import ArtifactStore
from store.db import session_scope

log = logging.getLogger(__name__)

# Set when the worker process is asked to shut down: running jobs checkpoint and go back
# to the queue instead of holding the shutdown until they finish.
SHUTDOWN = threading.Event()


class JobHooks:
    def __init__(
        self,
        *,
        factory: sessionmaker[Session],
        artifacts: ArtifactStore,
        job_id: str,
        attempt: int,
        lease_seconds: float,
        heartbeat_seconds: float,
        flush_seconds: float,
    ) -> None:
        self._factory = factory
        self._artifacts = artifacts
        self.job_id = job_id
        self.attempt = attempt
        self._lease_seconds = lease_seconds
        self._heartbeat_seconds = heartbeat_seconds
        self._flush_seconds = flush_seconds
        self._points: list[tuple[str, int, float]] = []
        self._warnings: list[dict[str, Any]] = []
        self._progress: tuple[int, int] | None = None
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        self.cancel_requested = False
        self.lease_lost = False
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._heartbeat_loop, name=f"heartbeat-{job_id[:8]}", daemon=True
        )

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> JobHooks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        self.flush()

    def _heartbeat_loop(self) -> None:
        last_renew = time.monotonic()
        while not self._done.wait(min(1.0, self._heartbeat_seconds)):
            renew = time.monotonic() - last_renew >= self._heartbeat_seconds
            try:
                with session_scope(self._factory) as session:
                    state = jobs.heartbeat(
                        session,
                        job_id=self.job_id,
                        attempt=self.attempt,
                        lease_seconds=self._lease_seconds,
                        renew=renew,
                    )
                if renew:
                    last_renew = time.monotonic()
                self.cancel_requested = state.cancel_requested
                if not state.held and not self.lease_lost:
                    log.warning("job %s: lease lost, stopping", self.job_id)
                    self.lease_lost = True
            except Exception:  # a database hiccup must not kill the run; retry next tick
                log.exception("job %s: heartbeat failed", self.job_id)
            if time.monotonic() - self._last_flush >= self._flush_seconds:
                self.flush()

    # -- the hooks contract --------------------------------------------------------------
    def on_progress(self, step: int, total: int) -> None:
        with self._lock:
            self._progress = (step, total)

    def on_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        with self._lock:
            self._points.extend((name, int(step), float(v)) for name, v in metrics.items())
            big = len(self._points) >= 2000
        if big:
            self.flush()

    def on_checkpoint(self, state: dict[str, Any]) -> None:
        step = int(state.get("step", 0))
        self._artifacts.save_checkpoint(self.job_id, state)
        self.flush()
        with session_scope(self._factory) as session:
            jobs.record_checkpoint(session, job_id=self.job_id, attempt=self.attempt, step=step)

    def on_warning(self, step: int, code: str, message: str) -> None:
        log.warning("job %s step %d: %s: %s", self.job_id, step, code, message)
        with self._lock:
            self._warnings.append({"step": int(step), "code": code, "message": message})

    def should_stop(self) -> bool:
        return self.cancel_requested or self.lease_lost or SHUTDOWN.is_set()

    # -- batching ------------------------------------------------------------------------
    def flush(self) -> None:
        with self._lock:
            points, self._points = self._points, []
            warnings, self._warnings = self._warnings, []
            progress, self._progress = self._progress, None
            self._last_flush = time.monotonic()
        if self.lease_lost or (not points and not warnings and progress is None):
            return  # another worker owns the job now; its run writes the series
        try:
            with session_scope(self._factory) as session:
                jobs.add_metrics(session, job_id=self.job_id, points=points)
                jobs.add_warnings(
                    session, job_id=self.job_id, attempt=self.attempt, warnings=warnings
                )
                if progress is not None:
                    jobs.record_progress(
                        session,
                        job_id=self.job_id,
                        attempt=self.attempt,
                        step=progress[0],
                        total=progress[1],
                    )
        except Exception:
            log.exception("job %s: could not write %d metric points", self.job_id, len(points))
