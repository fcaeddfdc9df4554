"""Broker and database faults under a real stack (uvicorn, two Celery workers) on private
Redis and PostgreSQL servers (`tests/services.py`) that the tests restart, stop and cut.

Every scenario ends the same way: every job succeeded once (its `attempt` is what the fault
explains), nothing was lost, and no metric step is missing or repeated."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

import ml
from ml.rl import dqn
from store import jobs
from store.db import session_factory, session_scope
from store.tables import Job
from tests.integration.conftest import STACK_SETTINGS
from tests.integration.stack import Stack
from tests.services import PostgresCluster, RedisServer, private_postgres, private_redis
from worker.app import transport_options

pytestmark = pytest.mark.integration

LEASE_SECONDS = 4
FAULT_SETTINGS = {
    "LEASE_SECONDS": str(LEASE_SECONDS),
    "HEARTBEAT_SECONDS": "0.5",
    "SWEEP_SECONDS": "1",
    "METRICS_FLUSH_SECONDS": "0.5",
    "QUEUED_RESEND_SECONDS": "3",
    "DEVICE": "cpu",
    "LOG_LEVEL": "INFO",
    "OMP_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
}

# Long enough to be caught running and hit by a fault (seconds), checkpointing often.
DQN = {
    "total_steps": 12_000,
    "learning_starts": 500,
    "train_frequency": 4,
    "gradient_steps": 1,
    "eval_interval": 4_000,
    "eval_episodes": 2,
    "checkpoint_interval": 1_000,
}
SMALL = {"env": {"kind": "frozen_lake"}}  # value_iteration: well under a second


Servers = tuple[PostgresCluster, RedisServer]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with private_postgres() as postgres, private_redis(tmp_path_factory.mktemp("redis")) as redis:
        yield postgres, redis


@pytest.fixture(scope="module")
def stack(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    postgres, redis = servers
    var_dir = tmp_path_factory.mktemp("faults")
    env = {k: v for k, v in os.environ.items() if k.upper() not in STACK_SETTINGS}
    env |= FAULT_SETTINGS | {
        "VAR_DIR": str(var_dir),
        "DATABASE_URL": postgres.url,
        "BROKER_URL": redis.url,
    }
    stack = Stack("faults", var_dir, env, postgres.url)
    try:
        stack.start()
        stack.start_worker()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def postgres(servers: Servers) -> PostgresCluster:
    return servers[0]


@pytest.fixture
def redis(servers: Servers) -> RedisServer:
    return servers[1]


@pytest.fixture(autouse=True)
def two_workers(stack: Stack) -> None:
    while len(stack.alive_workers()) < 2:
        stack.start_worker()


# -- helpers -------------------------------------------------------------------------------------
def row(stack: Stack, job_id: str) -> Job:
    """The job's row, read from the database (the API does not show everything)."""
    with session_scope(session_factory(stack.database_url)) as session:
        return jobs.get_job(session, job_id)


def create_queued(stack: Stack, n: int) -> list[str]:
    """Small jobs written to the database as the API writes them (recorded as sent), whose
    messages the test sends itself."""
    algorithm = ml.get_algorithm("value_iteration")
    config = algorithm.config.model_validate(SMALL).model_dump(mode="json")
    ids = []
    with session_scope(session_factory(stack.database_url)) as session:
        for _ in range(n):
            job = jobs.create_job(
                session, algorithm=algorithm.name, config=config, seed=0, queue=algorithm.queue
            )
            jobs.mark_enqueued(session, job_id=job.id)
            ids.append(job.id)
    return ids


def send(redis: RedisServer, job_ids: list[str], queue: str) -> None:
    app = Celery(broker=redis.url, broker_transport_options=transport_options(redis.url))
    for job_id in job_ids:
        app.send_task("crucible.train_job", args=[job_id], queue=queue)
    app.close()


def running(stack: Stack, job_id: str, checkpoint: int = 1_000) -> dict[str, Any]:
    """Wait until the job runs and has a checkpoint of at least `checkpoint`."""
    return stack.wait_for(
        job_id, {"running"}, timeout=90, check=lambda j: (j["checkpoint_step"] or 0) >= checkpoint
    )


def succeeded_once(stack: Stack, job_id: str, attempt: int = 1) -> dict[str, Any]:
    """The job succeeded, in `attempt` attempts, with a model and every metric point once."""
    done = stack.wait_for(job_id, timeout=120)
    assert done["status"] == "succeeded", f"{done}\n{stack.logs()}"
    assert done["attempt"] == attempt, f"{done}\n{stack.logs()}"
    assert done["model_id"], done
    metrics = stack.client.get(f"/v1/jobs/{job_id}/metrics").json()["metrics"]
    assert metrics, f"no metrics for {job_id}"
    for name, series in metrics.items():
        steps = series["steps"]
        assert len(steps) == len(set(steps)), f"{job_id}: duplicate steps in {name}: {steps}"
    if done["algorithm"] == "dqn":
        # set at every step, so logged at every log interval: a missing step shows here
        every = dqn.LOG_INTERVAL
        assert metrics["charts/epsilon"]["steps"] == list(
            range(every, DQN["total_steps"] + 1, every)
        ), f"{job_id}: missing steps"
        evals = DQN["eval_interval"]
        assert metrics["eval/return"]["steps"] == list(range(evals, DQN["total_steps"] + 1, evals))
    # Superseded checkpoints were deleted as they were replaced; the final state stays (a
    # model's training may continue from it), and it is the one the job records.
    final = f"{done['attempt']}-{done['checkpoint_step']}.pt"
    assert done["checkpoint_step"] == DQN["total_steps"] or done["algorithm"] != "dqn", done
    stack.wait_until(
        lambda: checkpoint_files(stack, job_id) == [final], 10, "superseded checkpoints deleted"
    )
    return done


def checkpoint_files(stack: Stack, job_id: str) -> list[str]:
    folder = stack.var_dir / "artifacts" / "checkpoints" / job_id
    return sorted(p.name for p in folder.glob("*.pt")) if folder.exists() else []


def other_worker(stack: Stack, holder: Any) -> Any:
    return next(p for p in stack.alive_workers() if p is not holder)


def outlast_the_lease(since: float) -> None:
    """Keep a fault in place until a lease taken just before it has expired."""
    time.sleep(max(0.0, since + LEASE_SECONDS + 1.5 - time.monotonic()))


# -- scenarios -----------------------------------------------------------------------------------
def test_redis_restarted_without_persistence_loses_no_queued_job(
    stack: Stack, redis: RedisServer
) -> None:
    """Both workers busy, three jobs queued; Redis restarts and forgets their messages. The
    sweepers send them again from their rows."""
    busy = [stack.submit("dqn", DQN, seed=s)["id"] for s in (1, 2)]
    for job_id in busy:
        stack.wait_for(job_id, {"running"}, timeout=90)
    queued = [stack.submit("value_iteration", SMALL)["id"] for _ in range(3)]
    redis.restart()

    for job_id in busy + queued:
        succeeded_once(stack, job_id)
    for job_id in queued:
        stack.wait_for_log(f"sending stale job {job_id}")  # how it came back


def test_postgres_down_longer_than_the_lease(
    stack: Stack, postgres: PostgresCluster, redis: RedisServer
) -> None:
    """A job running and jobs queued while PostgreSQL is down for longer than a lease: the
    running job rides it out (same attempt), and the messages the idle worker takes while
    the database is down go back to the broker instead of being acknowledged and lost."""
    job_id = stack.submit("dqn", DQN, seed=3)["id"]
    holder = stack.worker_running(running(stack, job_id))
    idle = other_worker(stack, holder)
    queued = create_queued(stack, 3)

    postgres.stop()
    down_at = time.monotonic()
    try:
        send(redis, queued, "cpu")
        # the first message the idle worker takes meets the outage and goes back
        stack.wait_for_log(f"job {queued[0]}: database unreachable", proc=idle)
        outlast_the_lease(down_at)
    finally:
        postgres.start()

    succeeded_once(stack, job_id)
    for queued_id in queued:
        succeeded_once(stack, queued_id)
    stack.wait_for_log(f"job {job_id}: heartbeat failed", proc=holder)


def test_a_database_hiccup_during_a_run_keeps_every_metric_point(
    stack: Stack, postgres: PostgresCluster
) -> None:
    """PostgreSQL restarts while a job runs (shorter than a lease): the writes that meet it
    wait in the buffer, and the run goes on in the same attempt."""
    job_id = stack.submit("dqn", DQN, seed=4)["id"]
    holder = stack.worker_running(running(stack, job_id))
    postgres.stop()
    try:  # down until a write of the run has met it
        stack.wait_for_log(f"job {job_id}: database unreachable", timeout=10, proc=holder)
    finally:
        postgres.start()
    succeeded_once(stack, job_id)


def test_a_paused_worker_does_not_replace_the_new_owners_checkpoint(stack: Stack) -> None:
    """SIGSTOP past the lease, another worker takes the job over and checkpoints; SIGCONT:
    the stale worker finds it lost the job and stops (a stop writes a checkpoint, which is
    what overwrote the owner's before) without writing over the owner's work."""
    job_id = stack.submit("dqn", DQN, seed=5)["id"]
    first = running(stack, job_id)
    stale = stack.worker_running(first)
    stack.pause_worker(stale)
    try:
        taken = stack.wait_for(
            job_id,
            {"running"},
            timeout=60,
            check=lambda j: j["attempt"] == 2 and j["checkpoint_step"] > first["checkpoint_step"],
        )
        owner_checkpoint = row(stack, job_id).checkpoint_uri
        assert owner_checkpoint is not None and f"/{job_id}/2-" in owner_checkpoint
    finally:
        stack.resume_worker(stale)
    stack.wait_for_log(f"job {job_id} attempt 1 -> abandoned", proc=stale)

    now = row(stack, job_id)
    if now.status == "running":  # the owner's checkpoint, or a later one of the owner's
        assert now.checkpoint_uri and f"/{job_id}/2-" in now.checkpoint_uri
        assert now.checkpoint_step >= taken["checkpoint_step"]
    assert not [f for f in checkpoint_files(stack, job_id) if f.startswith("1-")]
    done = succeeded_once(stack, job_id, attempt=2)
    assert done["worker"] != first["worker"]


def test_an_orphan_requeued_while_redis_is_down_is_sent_when_it_is_back(
    stack: Stack, redis: RedisServer
) -> None:
    job_id = stack.submit("dqn", DQN, seed=6)["id"]
    holder = stack.worker_running(running(stack, job_id))
    sweeper = other_worker(stack, holder)
    redis.stop()
    try:
        stack.kill_worker(holder)
        stack.wait_for_log(f"sending orphaned job {job_id}", timeout=60, proc=sweeper)
        stack.wait_for_log(f"could not enqueue job {job_id}", timeout=60, proc=sweeper)
        orphan = row(stack, job_id)
        assert orphan.status == "queued" and orphan.enqueued_at is None  # the send failed
    finally:
        redis.start()
    done = succeeded_once(stack, job_id, attempt=2)
    assert done["resumed_from_step"] >= 1_000
