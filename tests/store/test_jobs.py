"""Job state transitions against real databases (SQLite and PostgreSQL), schema from the
migrations."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from store import jobs
from store.db import make_engine
from store.tables import JobStatus
from tests.helpers import migrate


@pytest.fixture(params=["sqlite", "postgresql"])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    else:
        url = request.getfixturevalue("module_postgres_url")
    migrate(url)
    engine = make_engine(url)
    yield sessionmaker(bind=engine, expire_on_commit=False)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM metrics")
        conn.exec_driver_sql("DELETE FROM jobs")
    engine.dispose()


def new_job(session: Session, **overrides: object) -> str:
    values: dict = {"algorithm": "dqn", "config": {}, "seed": 0, "queue": "gpu"} | overrides
    job = jobs.create_job(session, **values)
    session.commit()
    return job.id


def test_claim_is_exclusive_and_finish_is_guarded(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        job_id = new_job(s)
        first = jobs.claim(s, job_id=job_id, worker="a", lease_seconds=60)
        s.commit()
        second = jobs.claim(s, job_id=job_id, worker="b", lease_seconds=60)
        s.commit()
        assert first.claimed and first.job and first.job.attempt == 1
        assert not second.claimed and "held by a" in second.reason
        # a stale attempt number cannot finish the job
        assert not jobs.finish(s, job_id=job_id, attempt=7, status=JobStatus.succeeded)
        assert jobs.finish(s, job_id=job_id, attempt=1, status=JobStatus.succeeded)
        s.commit()
        again = jobs.claim(s, job_id=job_id, worker="c", lease_seconds=60)
        assert not again.claimed and again.reason == "job is succeeded"


def test_expired_lease_is_requeued_and_resumes(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        job_id = new_job(s)
        jobs.claim(s, job_id=job_id, worker="a", lease_seconds=0.05)
        jobs.record_checkpoint(s, job_id=job_id, attempt=1, step=300)
        jobs.add_metrics(s, job_id=job_id, points=[("x", 200, 1.0), ("x", 400, 2.0)])
        s.commit()
        time.sleep(0.1)
        orphans = jobs.requeue_orphans(s, max_attempts=3)
        s.commit()
        assert [o.job_id for o in orphans] == [job_id]
        job = jobs.get_job(s, job_id)
        assert job.status == "queued" and job.checkpoint_step == 300
        claim = jobs.claim(s, job_id=job_id, worker="b", lease_seconds=60)
        assert claim.job and claim.job.attempt == 2 and claim.job.progress_step == 300
        jobs.start_resume(s, job_id=job_id, attempt=2, step=300)
        s.commit()
        assert jobs.metric_series(s, job_id=job_id)["x"] == ([200], [1.0])
        assert jobs.get_job(s, job_id).resumed_from_step == 300


def test_orphan_past_max_attempts_fails(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        job_id = new_job(s)
        jobs.claim(s, job_id=job_id, worker="a", lease_seconds=0.01)
        s.commit()
        time.sleep(0.05)
        assert jobs.requeue_orphans(s, max_attempts=2) != []  # first loss: back to the queue
        s.commit()
        jobs.claim(s, job_id=job_id, worker="b", lease_seconds=0.01)
        s.commit()
        time.sleep(0.05)
        assert jobs.requeue_orphans(s, max_attempts=2) == []  # second loss: give up
        s.commit()
        job = jobs.get_job(s, job_id)
        assert job.status == "failed" and "worker lost 2 times (last: b)" in (job.error or "")


def test_clean_release_is_not_a_lost_worker(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        job_id = new_job(s)
        for attempt in (1, 2):
            jobs.claim(s, job_id=job_id, worker="a", lease_seconds=60)
            assert jobs.release(s, job_id=job_id, attempt=attempt)
            s.commit()
        jobs.claim(s, job_id=job_id, worker="a", lease_seconds=0.01)
        s.commit()
        time.sleep(0.05)
        assert [o.job_id for o in jobs.requeue_orphans(s, max_attempts=2)] == [job_id]
        s.commit()
        job = jobs.get_job(s, job_id)
        assert job.status == "queued" and job.attempt == 3 and job.lost_workers == 1


def test_cancel_queued_never_runs_and_running_is_flagged(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        queued = new_job(s)
        assert jobs.request_cancel(s, job_id=queued).status == "cancelled"
        s.commit()
        assert not jobs.claim(s, job_id=queued, worker="a", lease_seconds=60).claimed

        running = new_job(s)
        jobs.claim(s, job_id=running, worker="a", lease_seconds=60)
        s.commit()
        job = jobs.request_cancel(s, job_id=running)
        s.commit()
        assert job.status == "running" and job.cancel_requested
        assert jobs.heartbeat(s, job_id=running, attempt=1, lease_seconds=60).cancel_requested
        jobs.finish(s, job_id=running, attempt=1, status=JobStatus.cancelled)
        s.commit()
        with pytest.raises(jobs.InvalidTransition):
            jobs.request_cancel(s, job_id=running)


def test_unsent_jobs_are_sent_by_the_sweeper(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        job_id = new_job(s)
        assert jobs.requeue_orphans(s, max_attempts=3, unsent_after_seconds=0) == [
            jobs.Orphan(job_id, "gpu")
        ]
        s.commit()
        assert jobs.requeue_orphans(s, max_attempts=3, unsent_after_seconds=0) == []


def test_list_filters_and_pages(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        ids = [new_job(s, algorithm="gan" if i % 2 else "dqn") for i in range(5)]
        rows, count = jobs.list_jobs(s, algorithm="dqn", limit=2)
        assert count == 3 and len(rows) == 2
        rows, count = jobs.list_jobs(s, status="queued", limit=10, offset=4)
        assert count == 5 and len(rows) == 1 and rows[0].id in ids
