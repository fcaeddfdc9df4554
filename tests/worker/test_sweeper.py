"""The sweeper: sends what the database says needs a message, recording only the sends that
succeeded; gives lease holders time after a database outage; prunes the embedded broker of
delivered messages (undelivered ones stay)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

import pytest
from kombu import Connection
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from store import jobs
from store.db import session_factory, session_scope
from store.settings import Settings
from tests.helpers import migrate
from worker import sweeper
from worker.sweeper import prune_embedded_broker


def test_prune_keeps_only_undelivered_messages(tmp_path: Path) -> None:
    url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    assert prune_embedded_broker(url) == 0  # no broker tables yet
    with Connection(url) as conn:
        queue = conn.SimpleQueue("cpu")
        for i in range(3):
            queue.put({"job": i})
        for _ in range(2):
            queue.get(timeout=5).ack()
        assert prune_embedded_broker(url) == 2
        engine = create_engine(url.removeprefix("sqla+"))
        with engine.connect() as c:
            rows = c.execute(text("SELECT visible FROM kombu_message")).all()
        engine.dispose()
        assert [bool(r.visible) for r in rows] == [True]
        assert queue.get(timeout=5).payload == {"job": 2}  # the undelivered one survived
        queue.close()
    assert prune_embedded_broker("redis://127.0.0.1:6379/0") == 0


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate(url)
    monkeypatch.setattr(sweeper._Outage, "last_failure", None)
    return Settings(var_dir=tmp_path, database_url=url, queued_resend_seconds=0.001)


def new_job(settings: Settings) -> str:
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        return jobs.create_job(session, algorithm="dqn", config={}, seed=0, queue="gpu").id


def enqueued_at(settings: Settings, job_id: str) -> Any:
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        return jobs.get_job(session, job_id).enqueued_at


def test_a_send_is_recorded_only_once_it_succeeded(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = new_job(settings), new_job(settings)
    tried: list[str] = []
    broker_up = False

    def send(job_id: str, queue: str, settings: Settings) -> bool:
        tried.append(job_id)
        return broker_up

    monkeypatch.setattr(sweeper, "enqueue_job", send)
    factory = session_factory(settings.resolved_database_url)
    time.sleep(0.01)
    assert [o.job_id for o in sweeper.requeue(settings, factory)] == [first, second]
    assert tried == [first]  # the broker is down: the round stops at the first failure
    assert enqueued_at(settings, first) is None and enqueued_at(settings, second) is None
    broker_up = True
    sweeper.requeue(settings, factory)
    assert tried == [first, first, second]
    assert enqueued_at(settings, first) is not None and enqueued_at(settings, second) is not None


def test_after_a_database_outage_lease_holders_get_time_to_renew(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweeper, "enqueue_job", lambda *_: True)
    job_id = new_job(settings)
    factory = session_factory(settings.resolved_database_url)
    with session_scope(factory) as session:
        jobs.claim(session, job_id=job_id, worker="w", lease_seconds=0.01)
    time.sleep(0.02)

    def unreachable() -> Any:
        raise OperationalError("connect", {}, ConnectionRefusedError("database down"))

    with pytest.raises(OperationalError):
        sweeper.requeue(settings, cast(Any, unreachable))
    assert sweeper.requeue(settings, factory) == []  # its holder could not renew either
    monkeypatch.setattr(sweeper._Outage, "last_failure", time.monotonic() - 61)  # a lease ago
    assert [o.job_id for o in sweeper.requeue(settings, factory)] == [job_id]
