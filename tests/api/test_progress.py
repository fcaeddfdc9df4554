"""Numbers shown to people are rounded as people read them: whole seconds of ETA, a fraction
to four decimals, integer steps."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from store.db import session_factory, session_scope
from store.tables import Job, utcnow
from tests.api.conftest import Api


def test_a_running_jobs_progress_is_rounded(api: Api) -> None:
    job = api.submit("value_iteration")
    factory = session_factory(api.settings.resolved_database_url)
    with session_scope(factory) as session:
        session.execute(
            update(Job)
            .where(Job.id == job["id"])
            .values(
                status="running",
                progress_step=301,
                progress_total=1_000,
                attempt_start_step=0,
                attempt_started_at=utcnow() - timedelta(seconds=7.3),
            )
        )
    progress = api.client.get(f"/v1/jobs/{job['id']}").json()["progress"]
    assert progress["step"] == 301 and progress["fraction"] == 0.301
    assert isinstance(progress["eta_seconds"], int)
    assert 16 <= progress["eta_seconds"] <= 18  # 7.3 s for 301 steps, 699 to go
