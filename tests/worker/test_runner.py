"""The task body, called directly against a real SQLite database and artifact folder:
outcomes are recorded, failures are readable, and nothing a job does kills the worker."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from sqlalchemy import update

import ml
from ml.core.errors import ConfigError, TrainingAborted
from store import jobs, models
from store.artifacts import open_artifact_store
from store.db import session_factory, session_scope
from store.settings import Settings
from store.tables import Job
from tests.helpers import migrate
from worker.runner import run_job


class EmptyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate(url)
    return Settings(var_dir=tmp_path, database_url=url, heartbeat_seconds=0.2)


def submit(settings: Settings, algorithm: str, config: dict[str, Any] | None = None) -> str:
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        job = jobs.create_job(
            session, algorithm=algorithm, config=config or {}, seed=0, queue="cpu"
        )
        return job.id


def job_row(settings: Settings, job_id: str) -> Any:
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        return jobs.get_job(session, job_id)


@pytest.fixture
def broken_algorithms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Algorithms that fail the three ways a run can fail: a bug, a bad input, and a health
    check that ends the run (after a warning)."""
    base = ml.ALGORITHMS["value_iteration"]

    def bug(*_: Any, **__: Any) -> ml.TrainedModel:
        raise RuntimeError("boom")

    def bad_input(*_: Any, **__: Any) -> ml.TrainedModel:
        raise ConfigError("the grid has no reachable goal", field="env")

    def aborts(*_: Any, hooks: ml.Hooks, **__: Any) -> ml.TrainedModel:
        hooks.on_warning(2, "loss_spike", "the loss jumped")
        raise TrainingAborted("diverged", "the loss is NaN at step 3", step=3)

    for name, fn in (("crashes", bug), ("rejects", bad_input), ("aborts", aborts)):
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
    assert row.error == "internal error: RuntimeError: boom"
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
