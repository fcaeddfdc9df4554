"""Cancellation, redelivery and worker death, through real HTTP, a real broker and real
worker processes (killed with SIGKILL)."""

from __future__ import annotations

import signal

import pytest
from celery import Celery

from tests.integration.stack import Stack
from worker.app import transport_options

pytestmark = pytest.mark.integration

# Long enough to be caught running (tens of seconds), checkpointing often.
LONG_DQN = {
    "total_steps": 30_000,
    "learning_starts": 500,
    "train_frequency": 4,
    "gradient_steps": 1,
    "eval_interval": 5_000,
    "eval_episodes": 2,
    "checkpoint_interval": 1_000,
}


# Runs to completion after an interruption, so shorter.
RESUMABLE_DQN = LONG_DQN | {"total_steps": 10_000}


def send_duplicate(stack: Stack, job_id: str, queue: str) -> None:
    """What a broker redelivery looks like to a worker: the same message again."""
    broker = (
        stack.env.get("BROKER_URL") or f"sqla+sqlite:///{stack.var_dir.resolve() / 'broker.sqlite'}"
    )
    options = transport_options(broker, stack.env.get("BROKER_KEY_PREFIX", ""))
    app = Celery(broker=broker, broker_transport_options=options)
    app.send_task("crucible.train_job", args=[job_id], queue=queue)
    app.close()


def test_cancel_running_and_queued_jobs(stack: Stack) -> None:
    running = stack.submit("dqn", LONG_DQN, seed=5)
    seen = stack.wait_for(
        running["id"], {"running"}, check=lambda j: j["progress"]["eta_seconds"] is not None
    )
    progress = seen["progress"]
    assert progress["total"] == LONG_DQN["total_steps"] and 0 < progress["fraction"] < 1
    assert seen["worker"] and seen["heartbeat_at"] and seen["started_at"]
    waiting = stack.submit("value_iteration", {"env": {"kind": "frozen_lake"}})
    assert stack.job(waiting["id"])["status"] == "queued"

    r = stack.client.post(f"/v1/jobs/{waiting['id']}/cancel")
    assert r.status_code == 202 and r.json()["status"] == "cancelled"
    r = stack.client.post(f"/v1/jobs/{running['id']}/cancel")
    assert r.status_code == 202 and r.json()["cancel_requested"] is True

    stopped = stack.wait_for(running["id"], timeout=60)
    assert stopped["status"] == "cancelled"
    assert stopped["checkpoint_step"] is not None  # the last checkpoint is kept
    assert stopped["progress"]["step"] < LONG_DQN["total_steps"]
    stack.wait_for_skip(waiting["id"], "job is cancelled")  # its message, read and left
    never = stack.job(waiting["id"])
    assert never["status"] == "cancelled" and never["attempt"] == 0
    assert never["started_at"] is None

    again = stack.client.post(f"/v1/jobs/{running['id']}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "job_finished"


def test_redelivered_message_does_not_rerun_a_finished_job(stack: Stack) -> None:
    job = stack.run("value_iteration", {"env": {"kind": "frozen_lake"}})
    send_duplicate(stack, job["id"], "cpu")
    stack.wait_for_skip(job["id"], "job is succeeded")
    after = stack.job(job["id"])
    assert after["status"] == "succeeded" and after["attempt"] == 1
    assert after["finished_at"] == job["finished_at"]


def test_worker_shutdown_hands_running_job_back(stack: Stack) -> None:
    """Ctrl-C / SIGTERM (warm shutdown): the job checkpoints, goes back to the queue, and
    another worker resumes it."""
    if len(stack.alive_workers()) < 2:
        stack.start_worker()
    job = stack.submit("dqn", RESUMABLE_DQN, seed=9)
    running = stack.wait_for(
        job["id"], {"running"}, check=lambda j: (j["checkpoint_step"] or 0) >= 1_000
    )
    holder = stack.worker_running(running)
    holder.send_signal(signal.SIGTERM)
    assert holder.wait(timeout=60) == 0

    done = stack.wait_for(job["id"], timeout=180)
    assert done["status"] == "succeeded" and done["attempt"] == 2, done
    assert done["resumed_from_step"] >= 1_000
    assert done["worker"] != running["worker"]


def test_killed_worker_job_resumes_on_another_worker(stack: Stack) -> None:
    if len(stack.alive_workers()) < 2:
        stack.start_worker()
    job = stack.submit("dqn", RESUMABLE_DQN, seed=7)
    running = stack.wait_for(
        job["id"], {"running"}, timeout=90, check=lambda j: (j["checkpoint_step"] or 0) >= 2_000
    )
    assert running["attempt"] == 1
    # A redelivery while the first worker holds a live lease must not start a second run:
    # the idle worker takes the message and leaves.
    send_duplicate(stack, job["id"], "gpu")
    stack.wait_for_skip(job["id"], "held by")
    assert stack.job(job["id"])["attempt"] == 1

    holder = stack.worker_running(running)
    stack.kill_worker(holder)
    done = stack.wait_for(job["id"], timeout=180)
    assert done["status"] == "succeeded", f"{done}\n{stack.logs()}"
    assert done["attempt"] == 2, done  # resumed once, not run twice
    assert done["resumed_from_step"] is not None and done["resumed_from_step"] >= 2_000
    assert done["worker"] != running["worker"]
    assert stack.alive_workers()

    metrics = stack.client.get(f"/v1/jobs/{job['id']}/metrics").json()["metrics"]
    for name, series in metrics.items():
        steps = series["steps"]
        assert len(steps) == len(set(steps)), f"duplicate steps in {name}"
