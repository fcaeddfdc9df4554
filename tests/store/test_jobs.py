"""Job state transitions against real databases (SQLite and PostgreSQL), schema from the
migrations."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from store import jobs
from store.db import make_engine
from store.tables import Job, JobStatus, utcnow
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
        assert jobs.record_checkpoint(
            s, job_id=job_id, attempt=1, step=300, uri="file:///c1"
        ).recorded
        jobs.add_metrics(s, job_id=job_id, points=[("x", 200, 1.0), ("x", 400, 2.0)])
        s.commit()
        time.sleep(0.1)
        orphans = jobs.requeue_orphans(s, max_attempts=3)
        s.commit()
        assert [o.job_id for o in orphans] == [job_id]
        job = jobs.get_job(s, job_id)
        assert job.status == "queued" and job.checkpoint_step == 300
        assert job.checkpoint_uri == "file:///c1"
        assert job.enqueued_at is None  # recorded only once a send succeeds
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


def test_unsent_jobs_are_sent_until_a_send_succeeds(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        job_id = new_job(s)
        assert jobs.requeue_orphans(s, max_attempts=3, resend_after_seconds=60) == []  # new
        unsent = [jobs.Orphan(job_id, "gpu", "unsent")]
        assert jobs.requeue_orphans(s, max_attempts=3, resend_after_seconds=0) == unsent
        s.commit()
        # the send failed: nothing was recorded, so the next sweep sends it again
        assert jobs.requeue_orphans(s, max_attempts=3, resend_after_seconds=0) == unsent
        jobs.mark_enqueued(s, job_id=job_id)
        s.commit()
        assert jobs.requeue_orphans(s, max_attempts=3, resend_after_seconds=30) == []


def age(s: Session, job_id: str, **seconds_ago: float) -> None:
    """Move the job's timestamps (`created_at=60`, `enqueued_at=40`...) into the past."""
    now = utcnow()
    values = {k: now - timedelta(seconds=v) for k, v in seconds_ago.items()}
    s.execute(update(Job).where(Job.id == job_id).values(**values))
    s.commit()


def test_a_job_queued_too_long_is_sent_again_with_backoff(factory: sessionmaker[Session]) -> None:
    """A message the broker lost (a restart without persistence) is re-sent from the row."""
    with factory() as s:
        job_id = new_job(s)
        age(s, job_id, created_at=100, enqueued_at=99)
        stale = [jobs.Orphan(job_id, "gpu", "stale")]
        assert jobs.requeue_orphans(s, max_attempts=3, resend_after_seconds=30) == stale
        # last sent 40 s ago, when it had waited 60 s: the next resend waits 60 s, not 30
        age(s, job_id, created_at=100, enqueued_at=40)
        assert jobs.requeue_orphans(s, max_attempts=3, resend_after_seconds=30) == []
        age(s, job_id, created_at=100, enqueued_at=51)  # sent after 49 s, 51 s ago: due
        assert jobs.requeue_orphans(s, max_attempts=3, resend_after_seconds=30) == stale
        # the wait is capped at MAX_RESEND_BACKOFF resend thresholds
        cap = 30 * jobs.MAX_RESEND_BACKOFF
        age(s, job_id, created_at=100_000, enqueued_at=cap + 1)
        assert jobs.requeue_orphans(s, max_attempts=3, resend_after_seconds=30) == stale
        # a running (claimed) job is never re-sent
        jobs.claim(s, job_id=job_id, worker="a", lease_seconds=60)
        s.commit()
        assert jobs.requeue_orphans(s, max_attempts=3, resend_after_seconds=0) == []


def test_expired_leases_can_be_left_to_their_holders(factory: sessionmaker[Session]) -> None:
    """After a database outage the sweeper gives lease holders time to renew."""
    with factory() as s:
        job_id = new_job(s)
        jobs.claim(s, job_id=job_id, worker="a", lease_seconds=0.01)
        s.commit()
        time.sleep(0.05)
        assert jobs.requeue_orphans(s, max_attempts=3, reclaim_expired=False) == []
        assert jobs.heartbeat(s, job_id=job_id, attempt=1, lease_seconds=60).held
        s.commit()
        assert jobs.get_job(s, job_id).status == "running"


def test_only_the_lease_holder_records_a_checkpoint(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        job_id = new_job(s)
        jobs.claim(s, job_id=job_id, worker="a", lease_seconds=0.01)
        first = jobs.record_checkpoint(s, job_id=job_id, attempt=1, step=100, uri="file:///1-100")
        assert first == jobs.CheckpointRecord(recorded=True, replaced_uri=None)
        s.commit()
        time.sleep(0.05)
        jobs.requeue_orphans(s, max_attempts=3)
        jobs.claim(s, job_id=job_id, worker="b", lease_seconds=60)
        s.commit()
        # the paused worker wakes up: its checkpoint is not recorded, nor its points
        stale = jobs.record_checkpoint(s, job_id=job_id, attempt=1, step=459, uri="file:///1-459")
        assert not stale.recorded
        assert not jobs.hold(s, job_id=job_id, attempt=1)
        s.commit()
        job = jobs.get_job(s, job_id)
        assert (job.checkpoint_step, job.checkpoint_uri) == (100, "file:///1-100")
        # the owner's record replaces the file it resumed from, which it then deletes
        owner = jobs.record_checkpoint(s, job_id=job_id, attempt=2, step=1000, uri="file:///2-1k")
        assert owner == jobs.CheckpointRecord(recorded=True, replaced_uri="file:///1-100")
        s.commit()
        assert jobs.current_checkpoint(s, job_id=job_id) == "file:///2-1k"
        assert jobs.get_job(s, job_id).checkpoint_step == 1000


def test_release_is_recorded_unsent(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        job_id = new_job(s)
        jobs.mark_enqueued(s, job_id=job_id)
        jobs.claim(s, job_id=job_id, worker="a", lease_seconds=60)
        assert jobs.release(s, job_id=job_id, attempt=1)
        s.commit()
        assert jobs.get_job(s, job_id).enqueued_at is None
        orphans = jobs.requeue_orphans(s, max_attempts=3, resend_after_seconds=0)
        assert orphans == [jobs.Orphan(job_id, "gpu", "unsent")]


def test_list_filters_and_pages(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        ids = [new_job(s, algorithm="gan" if i % 2 else "dqn") for i in range(5)]
        rows, count = jobs.list_jobs(s, algorithm="dqn", limit=2)
        assert count == 3 and len(rows) == 2
        rows, count = jobs.list_jobs(s, status="queued", limit=10, offset=4)
        assert count == 5 and len(rows) == 1 and rows[0].id in ids
