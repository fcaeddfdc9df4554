"""Training hooks backed by the database: progress, batched metrics, checkpoints, stop.

The training loop never waits on the database for `should_stop()`: a heartbeat thread renews
the job's lease and reads the cancel flag once a second, and `should_stop()` reads what it
found. Metric points are buffered and written in batches, so logging does not slow training.

Only the lease holder writes. Every batch (points, warnings, progress and the record of a new
checkpoint) is one transaction fenced by the attempt number (`store.jobs.hold`): a worker that
lost its lease (paused past it, cut off) writes nothing and stops.

A checkpoint is a file of its own, `checkpoints/<job>/<attempt>-<step>.pt`, never overwritten;
it becomes the job's current checkpoint when the database records it, in the same transaction
as every metric point up to its step, so a resume never misses a point nor repeats one. The
owner deletes the file a new record replaced; a fenced-out writer deletes its own.

A database hiccup costs nothing: what could not be written stays buffered and is written by
a later flush (the heartbeat thread flushes every `flush_seconds`), and the run goes on. The
buffer is bounded by making the loop wait for the database, never by dropping points.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from store import jobs
from store.artifacts import ArtifactStore, ArtifactUnavailable, delete_quietly
from store.db import database_unreachable, session_scope
from store.tables import JobLog
from worker.job_log import JobLogHandler, ProgressLog, progress_line
from worker.tensorboard import EventFile

log = logging.getLogger(__name__)

T = TypeVar("T")
Point = tuple[str, int, float]

# Set when the worker process is asked to shut down: running jobs checkpoint and go back
# to the queue instead of holding the shutdown until they finish.
SHUTDOWN = threading.Event()

FLUSH_POINTS = 2_000  # a buffer this large is written at once, not at the next tick
MAX_BUFFERED_POINTS = 100_000  # past this the loop waits for the database (about 10 MB)
RETRY_MAX_SECONDS = 2.0  # longest pause between two tries of a database write


class DatabaseUnavailable(RuntimeError):
    """The database stayed unreachable for longer than the worker waits for it."""


def outage_summary(exc: BaseException) -> str:
    """One line saying what went wrong (driver errors run over several lines)."""
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0] if first else ''}"


def internal_failure(job_id: str, attempt: int) -> str:
    """What a job shows for a failure that is not the client's to fix (a bug, a resource
    error, an artifact store that failed us): never the exception's text, which can name
    paths, hosts and library internals, but the reference the worker's log lines carry."""
    return f"an internal error (reference {job_id}/{attempt}); the worker's log has the details"


def is_db_outage(exc: BaseException) -> bool:
    """An error that says the database could not be reached (`store.db.database_unreachable`),
    or that this worker already gave up waiting for it."""
    return isinstance(exc, DatabaseUnavailable) or database_unreachable(exc)


def patiently(what: str, fn: Callable[[], T], *, patience: float) -> T:
    """Call `fn` until it gets through a database outage, for up to `patience` seconds.
    `fn` must be one transaction, safe to run again after a failure. Other errors propagate
    at once; an outage that lasts longer raises `DatabaseUnavailable`."""
    deadline = time.monotonic() + patience
    pause = 0.1
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_db_outage(exc):
                raise
            if time.monotonic() + pause > deadline:
                raise DatabaseUnavailable(
                    f"{what}: database unreachable for {patience:g} s"
                ) from exc
            log.warning("%s: database unreachable (%s); retrying", what, outage_summary(exc))
        time.sleep(pause)
        pause = min(pause * 2, RETRY_MAX_SECONDS)


def checkpoint_key(job_id: str, attempt: int, step: int) -> str:
    """Where `attempt` writes its checkpoint of `step`: a file no other attempt writes."""
    return f"checkpoints/{job_id}/{attempt}-{step}.pt"


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
        patience_seconds: float | None = None,
        deadline: float | None = None,
        legacy_checkpoint: bool = False,
        worker: str | None = None,
        progress_log_seconds: float = 30.0,
        tensorboard_dir: Path | None = None,
    ) -> None:
        """`deadline` is a `time.monotonic()` past which `should_stop()` is true (the job's
        wall-clock limit); `legacy_checkpoint` says the job has a checkpoint at the key
        used before per-attempt files, deleted once this attempt records one. The run's
        log records (and a progress line every `progress_log_seconds`) go to the job's own
        log, marked with the attempt and `worker`; with `tensorboard_dir` the points written
        go to a TensorBoard event file too."""
        self._factory = factory
        self._artifacts = artifacts
        self.job_id = job_id
        self.attempt = attempt
        self._lease_seconds = lease_seconds
        self._heartbeat_seconds = heartbeat_seconds
        self._flush_seconds = flush_seconds
        self.patience = patience_seconds if patience_seconds is not None else 3 * lease_seconds
        self._deadline = deadline
        self._legacy_checkpoint = legacy_checkpoint
        self._points: list[Point] = []
        self._warnings: list[dict[str, Any]] = []
        self._progress: tuple[int, int] | None = None
        self.records = JobLogHandler(attempt, worker)
        self._progress_log = ProgressLog(progress_log_seconds)
        self._latest: dict[str, float] = {}  # the last value of each metric, for progress lines
        self._tensorboard_dir = tensorboard_dir
        self._event_file: EventFile | None = None
        # A checkpoint file written but not yet recorded: (step, uri).
        self._pending: tuple[int, str] | None = None
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()  # the buffers
        self._sync = threading.Lock()  # one flush at a time; guards `_pending` changing hands
        self._unreachable = False  # the last flush met a database outage
        self.cancel_requested = False
        self.lease_lost = False
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._heartbeat_loop, name=f"heartbeat-{job_id[:8]}", daemon=True
        )

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> JobHooks:
        self.records.watch(threading.get_ident())
        logging.getLogger().addHandler(self.records)
        self._thread.start()
        self.records.watch(self._thread.ident)
        self.note(logging.INFO, "attempt %d started on %s", self.attempt, self.records.worker)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress_log.unlogged is not None:  # where the run stopped, said once
            step, total = self._progress_log.unlogged
            with self._lock:
                latest = dict(self._latest)
            line = progress_line(step, total, None, latest)
            self.note(logging.INFO, "%s", line)
        self._done.set()
        self._thread.join(timeout=5)
        logging.getLogger().removeHandler(self.records)
        if not self._drain(self.patience):
            self._give_up()

    def _heartbeat_loop(self) -> None:
        last_renew = time.monotonic()
        failing = False
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
            except Exception as exc:  # a database hiccup must not kill the run; retry next tick
                if not failing:
                    log.warning(
                        "job %s: heartbeat failed (%s); retrying",
                        self.job_id,
                        outage_summary(exc),
                    )
                failing = True
                continue
            if failing:
                log.info("job %s: heartbeat back", self.job_id)
                failing = False
            if renew:
                last_renew = time.monotonic()
            if state.cancel_requested and not self.cancel_requested:
                self.note(logging.INFO, "cancel requested: stopping at the next step")
            self.cancel_requested = state.cancel_requested
            if not state.held:
                self._lose_lease()
            if time.monotonic() - self._last_flush >= self._flush_seconds:
                try:
                    self.flush()
                except Exception:  # keep the heartbeat alive whatever happens
                    log.exception("job %s: flush failed", self.job_id)

    def note(self, level: int, message: str, *args: Any) -> None:
        """A line for the job's own log, and for the worker's (prefixed with the job)."""
        text = message % args if args else message
        log.log(level, "job %s: %s", self.job_id, text)
        self.records.add(logging.getLevelName(level), log.name, text)

    # -- the hooks contract --------------------------------------------------------------
    def on_progress(self, step: int, total: int) -> None:
        with self._lock:
            self._progress = (step, total)
        if self._progress_log.due(step, total):
            eta = self._progress_log.eta(step, total)
            with self._lock:
                latest = dict(self._latest)
            self.note(logging.INFO, "%s", progress_line(step, total, eta, latest))

    def on_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        with self._lock:
            self._points.extend((name, int(step), float(v)) for name, v in metrics.items())
            self._latest.update((name, float(v)) for name, v in metrics.items())
            buffered = len(self._points)
        if buffered >= FLUSH_POINTS and not self._unreachable:
            self.flush()  # while the database is unreachable the heartbeat thread retries
        if buffered >= MAX_BUFFERED_POINTS and not self._drain(self.patience):
            raise DatabaseUnavailable(
                f"job {self.job_id}: {buffered} metric points could not be written for "
                f"{self.patience:g} s"
            )

    def on_checkpoint(self, state: dict[str, Any]) -> None:
        """Write the checkpoint to a file of this attempt's, then record it (with the points
        before it). If the database cannot be reached the record waits in the buffer: the
        run goes on, and until it is written the previous checkpoint stays current."""
        if self.lease_lost:
            return  # another worker owns the job: write nothing
        step = int(state.get("step", 0))
        try:
            uri = self._artifacts.save_torch(checkpoint_key(self.job_id, self.attempt, step), state)
        except ArtifactUnavailable as exc:  # a later checkpoint may get through
            log.warning("job %s: checkpoint of step %d not written: %s", self.job_id, step, exc)
            return
        with self._sync, self._lock:
            unrecorded, self._pending = self._pending, (step, uri)
        if unrecorded is not None and unrecorded[1] != uri:
            self._delete(unrecorded[1])  # never recorded, and superseded now
        self.flush()

    def on_warning(self, step: int, code: str, message: str) -> None:
        self.note(logging.WARNING, "step %d: %s: %s", step, code, message)
        with self._lock:
            self._warnings.append({"step": int(step), "code": code, "message": message})

    def should_stop(self) -> bool:
        return self.cancel_requested or self.lease_lost or SHUTDOWN.is_set() or self.timed_out

    @property
    def timed_out(self) -> bool:
        """Past the job's wall-clock limit."""
        return self._deadline is not None and time.monotonic() >= self._deadline

    # -- batching ------------------------------------------------------------------------
    def flush(self) -> bool:
        """Write what is buffered in one fenced transaction; True when nothing is left to
        write (all of it written, or the job is no longer ours). On a database error what
        was buffered is kept for the next flush."""
        with self._sync:
            with self._lock:
                points, warnings = list(self._points), list(self._warnings)
                progress, pending = self._progress, self._pending
                self._last_flush = time.monotonic()
            records = self.records.pending()
            if not (points or warnings or progress or pending or records):
                return True
            if self.lease_lost:
                self._discard()
                return True
            try:
                with session_scope(self._factory) as session:
                    record = self._write(session, points, warnings, progress, pending, records)
            except Exception as exc:
                if is_db_outage(exc):
                    if not self._unreachable:
                        log.warning(
                            "job %s: database unreachable (%s); metric points and "
                            "checkpoint records kept until it is back",
                            self.job_id,
                            outage_summary(exc),
                        )
                    self._unreachable = True
                    return False
                # Not an outage (a bug, a refused value): trying again would fail again.
                log.exception("job %s: could not write %d points", self.job_id, len(points))
                record = jobs.CheckpointRecord(recorded=False)
                pending_lost, pending = pending, None
                if pending_lost is not None:
                    self._delete(pending_lost[1])
                self.on_warning(
                    max((s for _, s, _ in points), default=0),
                    "metrics_lost",
                    f"{len(points)} metric points could not be stored: {type(exc).__name__}",
                )
            else:
                if record is not None and points:
                    self._export(points)  # what the database now holds
            if self._unreachable:
                log.info("job %s: database back; %d points written", self.job_id, len(points))
                self._unreachable = False
            self.records.drop(len(records))
            with self._lock:
                del self._points[: len(points)]
                del self._warnings[: len(warnings)]
                if self._progress is progress:
                    self._progress = None
                if record is not None:
                    self._pending = None  # recorded (or dropped); a fenced one is deleted below
        if record is None:
            self._lose_lease()
        elif record.recorded:
            self._superseded(record.replaced_uri)
        return True

    def _write(
        self,
        session: Session,
        points: list[Point],
        warnings: list[dict[str, Any]],
        progress: tuple[int, int] | None,
        pending: tuple[int, str] | None,
        records: list[dict[str, Any]],
    ) -> jobs.CheckpointRecord | None:
        """One transaction; None if this attempt no longer holds the job."""
        if not jobs.hold(session, job_id=self.job_id, attempt=self.attempt):
            return None
        jobs.add_metrics(session, job_id=self.job_id, points=points)
        session.add_all(JobLog(job_id=self.job_id, **record) for record in records)
        jobs.add_warnings(session, job_id=self.job_id, attempt=self.attempt, warnings=warnings)
        if progress is not None:
            jobs.record_progress(
                session,
                job_id=self.job_id,
                attempt=self.attempt,
                step=progress[0],
                total=progress[1],
            )
        if pending is None:
            return jobs.CheckpointRecord(recorded=False)
        return jobs.record_checkpoint(
            session, job_id=self.job_id, attempt=self.attempt, step=pending[0], uri=pending[1]
        )

    def _export(self, points: list[Point]) -> None:
        """Points the database holds now, to the TensorBoard event file too. Best effort: a
        full disk there must not stop the run."""
        if self._tensorboard_dir is None:
            return
        try:
            if self._event_file is None:
                self._event_file = EventFile(self._tensorboard_dir, self.job_id, self.attempt)
            self._event_file.add(points)
        except OSError as exc:
            log.warning("job %s: TensorBoard export stopped: %s", self.job_id, exc)
            self._tensorboard_dir = None

    def _drain(self, patience: float) -> bool:
        """Flush until everything is written, for up to `patience` seconds."""
        deadline = time.monotonic() + patience
        pause = 0.1
        while not self.flush():
            if time.monotonic() + pause > deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, RETRY_MAX_SECONDS)
        return True

    def _give_up(self) -> None:
        with self._sync, self._lock:
            lost, self._points = len(self._points), []
            pending, self._pending = self._pending, None
        log.error(
            "job %s attempt %d: the database stayed unreachable for %g s; %d metric points "
            "were not written (a resumed run writes them again from its last checkpoint)",
            self.job_id,
            self.attempt,
            self.patience,
            lost,
        )
        if pending is not None:
            self._delete(pending[1])

    # -- leases and files ----------------------------------------------------------------
    def _lose_lease(self) -> None:
        if not self.lease_lost:
            log.warning("job %s attempt %d: lease lost, stopping", self.job_id, self.attempt)
            self.lease_lost = True
        with self._sync:
            self._discard()

    def _discard(self) -> None:
        """Drop what a worker that lost the job still holds: the new owner resumes from the
        last recorded checkpoint, and every point up to it is written; the rest it writes
        again. Called with `_sync` held."""
        self.records.drop(len(self.records.pending()))
        with self._lock:
            dropped, self._points = len(self._points), []
            self._warnings, self._progress = [], None
            pending, self._pending = self._pending, None
        if dropped:
            log.info("job %s: %d unwritten points left to the new owner", self.job_id, dropped)
        if pending is not None:
            self._delete(pending[1])  # fenced out: its own file, never recorded

    def _superseded(self, replaced_uri: str | None) -> None:
        if replaced_uri is not None:
            self._delete(replaced_uri)
        elif self._legacy_checkpoint:  # the one key all attempts used before per-attempt files
            self._delete(self._artifacts.checkpoint_uri(self.job_id))
        self._legacy_checkpoint = False

    def _delete(self, uri: str) -> None:
        delete_quietly(self._artifacts, uri, f"job {self.job_id}")
