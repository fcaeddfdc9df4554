"""The task body, called directly against a real SQLite database and artifact folder:
outcomes are recorded, failures are readable, and nothing a job does kills the worker."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

import ml
from ml.core.errors import ConfigError, TrainingAborted, TrainingStopped
from ml.core.hooks import RecordingHooks
from store import jobs, models
from store.artifacts import ArtifactUnavailable, open_artifact_store
from store.db import session_factory, session_scope
from store.settings import Settings
from store.tables import Job
from tests.helpers import migrate
from tests.integration.stack import free_port
from tests.tiny_configs import TINY_CONFIGS
from worker import runner
from worker.hooks import JobHooks
from worker.runner import MessageNotHandled, run_job


class EmptyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate(url)
    return Settings(var_dir=tmp_path, database_url=url, heartbeat_seconds=0.2)


def submit(
    settings: Settings, algorithm: str, config: dict[str, Any] | None = None, **extra: Any
) -> str:
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        job = jobs.create_job(
            session, algorithm=algorithm, config=config or {}, seed=0, queue="cpu", **extra
        )
        return job.id


def job_row(settings: Settings, job_id: str) -> Any:
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        return jobs.get_job(session, job_id)


@pytest.fixture
def broken_algorithms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Algorithms that fail the four ways a run can fail: a bug, a bad input, a health check
    that ends the run (after a warning), and an artifact store that fails it."""
    base = ml.ALGORITHMS["value_iteration"]

    def bug(*_: Any, **__: Any) -> ml.TrainedModel:
        raise RuntimeError("boom")

    def bad_input(*_: Any, **__: Any) -> ml.TrainedModel:
        raise ConfigError("the grid has no reachable goal", field="env")

    def aborts(*_: Any, hooks: ml.Hooks, **__: Any) -> ml.TrainedModel:
        hooks.on_warning(2, "loss_spike", "the loss jumped")
        raise TrainingAborted("diverged", "the loss is NaN at step 3", step=3)

    def store_fails(*_: Any, **__: Any) -> ml.TrainedModel:
        raise ArtifactUnavailable("put models/x.pt: cannot use the S3 store at http://10.1.2.3")

    for name, fn in (
        ("crashes", bug),
        ("rejects", bad_input),
        ("aborts", aborts),
        ("loses_store", store_fails),
    ):
        algo = replace(base, name=name, config=EmptyConfig, train=fn)
        monkeypatch.setitem(ml.ALGORITHMS, name, algo)


def test_success_records_model_and_is_idempotent(settings: Settings) -> None:
    job_id = submit(settings, "value_iteration", {"env": {"kind": "frozen_lake"}})
    assert run_job(job_id, settings, worker="w1") == "succeeded"
    row = job_row(settings, job_id)
    assert row.status == "succeeded" and row.attempt == 1 and row.worker == "w1"
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        made = models.model_of_job(session, job_id)
    assert made is not None and made.id != job_id and made.kind == "value_iteration"
    assert made.artifact_uri.startswith("file://") and made.size_bytes > 0
    model = open_artifact_store(settings).load_model(made.artifact_uri)
    assert model.V[0] == pytest.approx(0.542, abs=1e-3)  # type: ignore[attr-defined]
    # the same message again does nothing
    assert run_job(job_id, settings, worker="w2") == "skipped: job is succeeded"
    assert job_row(settings, job_id).attempt == 1


@pytest.mark.usefixtures("broken_algorithms")
def test_failures_are_recorded_readably(settings: Settings) -> None:
    crashed = submit(settings, "crashes")
    assert run_job(crashed, settings) == "failed"
    row = job_row(settings, crashed)
    # the exception's text is for the worker's log, never for the job's page
    assert row.error == (
        f"the run failed with an internal error (reference {crashed}/1); "
        "the worker's log has the details"
    )
    assert row.error_code == "internal_error"

    rejected = submit(settings, "rejects")
    assert run_job(rejected, settings) == "failed"
    row = job_row(settings, rejected)
    assert row.error == "the grid has no reachable goal" and row.error_code == "invalid_config"

    aborted = submit(settings, "aborts")
    assert run_job(aborted, settings) == "failed"
    row = job_row(settings, aborted)
    assert row.error_code == "diverged" and row.error == "the loss is NaN at step 3"
    assert row.warnings == [{"step": 2, "code": "loss_spike", "message": "the loss jumped"}]

    stranded = submit(settings, "loses_store")
    assert run_job(stranded, settings) == "failed"
    row = job_row(settings, stranded)
    assert row.error_code == "artifact_store_unavailable" and "10.1.2.3" not in (row.error or "")
    assert f"(reference {stranded}/1)" in (row.error or "")


def test_cancel_requested_before_claim_never_runs(settings: Settings) -> None:
    job_id = submit(settings, "value_iteration")
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        jobs.request_cancel(session, job_id=job_id)
    assert run_job(job_id, settings) == "skipped: job is cancelled"
    assert job_row(settings, job_id).attempt == 0


def test_a_checkpoint_from_an_older_format_is_discarded_not_fatal(settings: Settings) -> None:
    job_id = submit(settings, "value_iteration", {"env": {"kind": "frozen_lake"}})
    open_artifact_store(settings).save_checkpoint(job_id, {"step": 5, "V_table": [1.0]})
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        session.execute(update(Job).where(Job.id == job_id).values(checkpoint_step=5))
    assert run_job(job_id, settings) == "succeeded"
    row = job_row(settings, job_id)
    assert [w["code"] for w in row.warnings] == ["checkpoint_discarded"]
    assert row.resumed_from_step == 0


# -- leases, checkpoints and outages ------------------------------------------------------------
LONG_DQN = TINY_CONFIGS["dqn"] | {"total_steps": 200_000, "checkpoint_interval": 100}


def test_a_job_past_its_wall_clock_limit_checkpoints_and_fails(settings: Settings) -> None:
    job_id = submit(settings, "dqn", LONG_DQN, max_runtime_seconds=1.0)
    assert run_job(job_id, settings) == "failed"
    row = job_row(settings, job_id)
    assert row.error_code == "timed_out"
    assert "limit of 1 s (max_runtime_seconds)" in row.error
    assert row.checkpoint_step is not None and row.checkpoint_step < LONG_DQN["total_steps"]
    assert row.checkpoint_uri.endswith(f"/checkpoints/{job_id}/1-{row.checkpoint_step}.pt")
    state = open_artifact_store(settings).load_torch(row.checkpoint_uri)
    assert state["step"] == row.checkpoint_step  # the stop's checkpoint is the current one
    assert checkpoint_files(settings, job_id) == [f"1-{row.checkpoint_step}.pt"]


def checkpoint_files(settings: Settings, job_id: str) -> list[str]:
    folder = settings.var_dir / "artifacts" / "checkpoints" / job_id
    return sorted(p.name for p in folder.glob("*.pt")) if folder.exists() else []


def legacy_checkpoint(settings: Settings, job_id: str) -> int:
    """Give the job a checkpoint the way workers wrote them before per-attempt files."""
    algorithm = ml.get_algorithm("value_iteration")
    config = algorithm.config.model_validate(TINY_CONFIGS["value_iteration"])
    hooks = RecordingHooks(stop_after_checkpoints=1)
    with pytest.raises(TrainingStopped):
        algorithm.run(config, seed=0, hooks=hooks)
    state = hooks.checkpoints[0]
    open_artifact_store(settings).save_checkpoint(job_id, state)
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        session.execute(update(Job).where(Job.id == job_id).values(checkpoint_step=state["step"]))
    return int(state["step"])


def test_a_job_checkpointed_before_per_attempt_files_resumes(settings: Settings) -> None:
    job_id = submit(settings, "value_iteration", TINY_CONFIGS["value_iteration"])
    step = legacy_checkpoint(settings, job_id)
    store = open_artifact_store(settings)
    assert run_job(job_id, settings) == "succeeded"
    row = job_row(settings, job_id)
    assert row.resumed_from_step == step and not row.warnings
    assert not store.exists(store.checkpoint_uri(job_id))  # the run's own replaced it
    # The final state stays, for a job that continues the run (retention deletes it later).
    final = f"{row.attempt}-{row.checkpoint_step}.pt"
    assert checkpoint_files(settings, job_id) == [final]
    assert row.checkpoint_uri is not None and row.checkpoint_uri.endswith(final)


def hooks_for(settings: Settings, job_id: str, attempt: int, factory: Any = None) -> JobHooks:
    return JobHooks(
        factory=factory or session_factory(settings.resolved_database_url),
        artifacts=open_artifact_store(settings),
        job_id=job_id,
        attempt=attempt,
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=60,
        flush_seconds=60,
        patience_seconds=1,
    )


def claim(settings: Settings, job_id: str, worker: str, lease_seconds: float = 60) -> None:
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        assert jobs.claim(session, job_id=job_id, worker=worker, lease_seconds=lease_seconds)


def test_a_worker_that_lost_its_lease_writes_no_checkpoint(settings: Settings) -> None:
    """The paused worker of the review: resumed after another took its job over, its
    checkpoint must not replace the owner's."""
    job_id = submit(settings, "dqn")
    claim(settings, job_id, "paused", lease_seconds=0.01)
    stale = hooks_for(settings, job_id, attempt=1)
    stale.on_checkpoint({"step": 200})
    time.sleep(0.05)
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        jobs.requeue_orphans(session, max_attempts=3)
    claim(settings, job_id, "owner")
    owner = hooks_for(settings, job_id, attempt=2)
    owner.on_checkpoint({"step": 1_000})
    assert checkpoint_files(settings, job_id) == ["2-1000.pt"]  # 1-200.pt was superseded

    stale.on_metrics(459, {"losses/td": 1.0})
    stale.on_checkpoint({"step": 459})
    assert stale.lease_lost and stale.should_stop()
    row = job_row(settings, job_id)
    assert (row.checkpoint_step, row.checkpoint_uri.rsplit("/", 1)[1]) == (1000, "2-1000.pt")
    assert checkpoint_files(settings, job_id) == ["2-1000.pt"]  # the stale file was deleted
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        assert jobs.metric_series(session, job_id=job_id) == {}


class FlakyDatabase:
    """A session factory whose database is unreachable while `down` is set."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory
        self.down = False

    def __call__(self) -> Any:
        if self.down:
            raise OperationalError("connect", {}, ConnectionRefusedError("database down"))
        return self.factory()


def test_a_database_hiccup_loses_no_point_and_no_checkpoint(settings: Settings) -> None:
    job_id = submit(settings, "dqn")
    claim(settings, job_id, "w")
    db = FlakyDatabase(session_factory(settings.resolved_database_url))
    hooks = hooks_for(settings, job_id, attempt=1, factory=db)
    hooks.on_metrics(100, {"a": 1.0})
    hooks.on_checkpoint({"step": 100})
    db.down = True
    hooks.on_metrics(200, {"a": 2.0})
    hooks.on_checkpoint({"step": 200})  # written, its record waits: the run goes on
    hooks.on_metrics(300, {"a": 3.0})
    hooks.on_checkpoint({"step": 300})  # supersedes the unrecorded one
    assert not hooks.flush() and not hooks.should_stop()
    assert job_row(settings, job_id).checkpoint_step == 100
    assert checkpoint_files(settings, job_id) == ["1-100.pt", "1-300.pt"]
    db.down = False
    assert hooks.flush()
    row = job_row(settings, job_id)
    assert row.checkpoint_step == 300 and row.checkpoint_uri.endswith("/1-300.pt")
    assert checkpoint_files(settings, job_id) == ["1-300.pt"]
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        assert jobs.metric_series(session, job_id=job_id)["a"] == ([100, 200, 300], [1, 2, 3])


def test_a_message_that_meets_a_database_outage_is_not_consumed(tmp_path: Path) -> None:
    down = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(MessageNotHandled):
        run_job("somejob", Settings(var_dir=tmp_path, database_url=down))


def test_memory_is_freed_after_the_job_is_marked_finished(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = submit(settings, "value_iteration", TINY_CONFIGS["value_iteration"])
    seen: list[str] = []
    monkeypatch.setattr(
        runner, "_free_memory", lambda: seen.append(job_row(settings, job_id).status)
    )
    assert run_job(job_id, settings) == "succeeded"
    assert seen == ["succeeded"]
