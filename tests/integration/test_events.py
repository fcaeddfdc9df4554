"""Live events and logs through a real server and worker: a client that opens the stream as it
submits sees the job queued, running, its metric points as they are written and its end,
and then the stream closes by itself; the log, followed, ends with the job."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.stack import Stack

pytestmark = pytest.mark.integration

# A few seconds of training, so points arrive while it runs.
DQN = {
    "total_steps": 3_000,
    "learning_starts": 200,
    "train_frequency": 4,
    "gradient_steps": 1,
    "eval_interval": 1_000,
    "eval_episodes": 2,
    "checkpoint_interval": 1_000,
}


def stream(stack: Stack, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every event of a stream, read as it comes, until the server closes it."""
    events: list[dict[str, Any]] = []
    fields: dict[str, str] = {}
    with stack.client.stream("GET", path, params=params, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(":"):
                continue
            if line:
                name, _, value = line.partition(": ")
                fields[name] = value
                continue
            if "event" in fields:
                events.append({**fields, "data": json.loads(fields["data"])})
            fields = {}
    return events


def test_a_watcher_sees_the_run_live_and_the_stream_ends_with_it(stack: Stack) -> None:
    job = stack.submit("dqn", DQN, seed=2)
    events = stream(stack, f"/v1/jobs/{job['id']}/events")
    kinds = [e["event"] for e in events]
    statuses = [e["data"]["status"] for e in events if e["event"] == "status"]
    assert statuses == ["queued", "running", "succeeded"], statuses
    assert kinds[-1] == "end" and events[-1]["data"]["status"] == "succeeded"
    at = {e["data"]["status"]: i for i, e in enumerate(events) if e["event"] == "status"}
    assert "metrics" in kinds[at["running"] : at["succeeded"]]  # points came while it ran
    steps = [e["data"]["step"] for e in events if e["event"] == "progress"]
    assert steps == sorted(steps) and steps[-1] == DQN["total_steps"]
    assert len([e for e in events if e["event"] == "progress"]) >= 2  # moved while watched
    ids = [e["id"] for e in events]
    assert all(ids) and len(set(ids[:-1])) >= len(kinds) // 2  # ids move with the stream


def test_a_followed_log_ends_with_the_job(stack: Stack) -> None:
    job = stack.submit("dqn", DQN | {"total_steps": 1_000}, seed=3)
    records = stream(stack, f"/v1/jobs/{job['id']}/logs", follow="true")
    messages = [r["data"]["message"] for r in records]
    assert any(m.startswith("attempt 1 started on") for m in messages), messages
    assert any("step 1000/1000 (100%)" in m for m in messages), messages
    assert stack.job(job["id"])["status"] == "succeeded"


def test_idle_workers_are_seen_with_the_queues_they_serve(stack: Stack) -> None:
    """Each worker's sweeper says it is up and which queues it serves (`--queues`), so an
    idle one counts: in the figures, and for a queued job's estimated start."""

    def up() -> dict[str, int]:
        text = stack.client.get("/metrics").text
        found = {}
        for line in text.splitlines():
            if line.startswith("crucible_workers_up{"):
                queue = line.split('queue="', 1)[1].split('"', 1)[0]
                found[queue] = int(float(line.rsplit(" ", 1)[1]))
        return found

    workers = len(stack.alive_workers())
    stack.wait_until(
        lambda: up() == {"cpu": workers, "gpu": workers, "queries": workers}, 30, "workers up"
    )
