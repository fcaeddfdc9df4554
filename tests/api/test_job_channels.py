"""A job's live channels and life after it ends: the events stream (resumable), its own log,
its place in the queue, resume, clone and delete."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from api.routes import events as events_routes
from store import jobs, workers
from store.db import session_factory, session_scope
from store.tables import JobEvent, JobLog, MetricPoint
from tests.api.conftest import Api
from tests.tiny_configs import TINY_CONFIGS


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Events of a text/event-stream body: {"id", "event", "data"} (data parsed as JSON)."""
    out = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if "event" in fields:
            fields["data"] = json.loads(fields["data"])
            out.append(fields)
    return out


def events_of(api: Api, job_id: str, **headers: str) -> list[dict[str, Any]]:
    r = api.client.get(f"/v1/jobs/{job_id}/events", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    return parse_sse(r.text)


def test_a_finished_job_s_stream_replays_its_history_and_closes(api: Api) -> None:
    job = api.train("gan")
    events = events_of(api, job["id"])
    kinds = [e["event"] for e in events]
    statuses = [e["data"]["status"] for e in events if e["event"] == "status"]
    assert statuses == ["queued", "running", "succeeded"]
    assert kinds[-1] == "end" and events[-1]["data"]["status"] == "succeeded"
    assert events[-1]["data"]["model_id"] == job["model_id"]
    running = next(e for e in events if e["data"].get("status") == "running")
    assert running["data"]["worker"] == "test-worker" and running["data"]["attempt"] == 1
    points = [p for e in events if e["event"] == "metrics" for p in e["data"]["points"]]
    with session_scope(session_factory(api.settings.resolved_database_url)) as session:
        stored = session.scalar(
            select(func.count()).select_from(MetricPoint).where(MetricPoint.job_id == job["id"])
        )
    assert stored and len(points) == stored
    assert {"losses/discriminator", "losses/generator"} <= {p["name"] for p in points}
    progress = [e["data"] for e in events if e["event"] == "progress"]
    assert progress[-1]["step"] == progress[-1]["total"] == TINY_CONFIGS["gan"]["total_steps"]
    assert all(e.get("id") for e in events)


def test_last_event_id_resumes_after_that_event(api: Api) -> None:
    job = api.train("value_iteration")
    events = events_of(api, job["id"])
    running = next(i for i, e in enumerate(events) if e["data"].get("status") == "running")
    later = events_of(api, job["id"], **{"Last-Event-ID": events[running]["id"]})
    statuses = [e["data"]["status"] for e in later if e["event"] == "status"]
    assert statuses == ["succeeded"]  # neither queued nor running again
    assert later[-1]["event"] == "end"
    bad = api.error("GET", f"/v1/jobs/{job['id']}/events", 422, headers={"Last-Event-ID": "x"})
    assert bad["field"] == "Last-Event-ID"


def test_events_and_logs_of_another_tenant_s_or_a_missing_job_are_404(api: Api) -> None:
    for path in ("events", "logs"):
        body = api.error("GET", f"/v1/jobs/{'0' * 32}/{path}", 404)
        assert body["code"] == "job_not_found"
    api.error("GET", f"/v1/jobs/{'0' * 32}/logs?page=2", 422)


def test_the_job_log_says_where_each_attempt_ran_and_how_far_it_got(api: Api) -> None:
    job = api.train("gan")
    page = api.client.get(f"/v1/jobs/{job['id']}/logs").json()
    messages = [r["message"] for r in page["data"]]
    assert any("attempt 1 started on test-worker" in m for m in messages), messages
    total = TINY_CONFIGS["gan"]["total_steps"]
    assert any(f"step {total}/{total} (100%)" in m for m in messages), messages
    assert {r["attempt"] for r in page["data"]} == {1}
    assert page["job_finished"] and not page["has_more"]
    first = api.client.get(f"/v1/jobs/{job['id']}/logs", params={"limit": 1}).json()
    assert first["has_more"] and len(first["data"]) == 1
    rest = api.client.get(
        f"/v1/jobs/{job['id']}/logs", params={"after": first["next_after"]}
    ).json()
    assert [r["id"] for r in first["data"] + rest["data"]] == [r["id"] for r in page["data"]]
    followed = api.client.get(f"/v1/jobs/{job['id']}/logs", params={"follow": "true"})
    assert followed.headers["content-type"].startswith("text/event-stream")
    streamed = parse_sse(followed.text)
    assert [e["data"]["message"] for e in streamed] == messages
    assert all(e["event"] == "log" for e in streamed)


def test_queued_jobs_know_their_place_and_when_they_should_start(api: Api) -> None:
    done = api.train("value_iteration")  # a recent duration of this algorithm
    ahead = api.submit("value_iteration", TINY_CONFIGS["value_iteration"])
    factory = session_factory(api.settings.resolved_database_url)
    queued = [api.submit("value_iteration", TINY_CONFIGS["value_iteration"]) for _ in range(2)]
    assert [j["queue_position"] for j in queued] == [2, 3]  # said in the submission's answer
    unknown = api.client.get(f"/v1/jobs/{queued[1]['id']}").json()
    assert unknown["queue_position"] == 3
    assert unknown["estimated_start_seconds"] is None  # no worker seen on the queue
    with session_scope(factory) as session:  # a worker takes the first
        assert jobs.claim(session, job_id=ahead["id"], worker="w1", lease_seconds=60).claimed
    shown = [api.client.get(f"/v1/jobs/{j['id']}").json() for j in queued]
    assert [j["queue_position"] for j in shown] == [1, 2]
    first, second = (j["estimated_start_seconds"] for j in shown)
    assert first is not None and second is not None and 0 <= first <= second
    listed = api.client.get("/v1/jobs", params={"status": "queued"}).json()["data"]
    assert sorted(j["queue_position"] for j in listed) == [1, 2]
    running = api.client.get(f"/v1/jobs/{ahead['id']}").json()
    assert running["queue_position"] is None and running["estimated_start_seconds"] is None
    assert done["queue_position"] is None
    with session_scope(factory) as session:  # an idle worker on the queue takes the head now
        workers.beat(session, name="w2", queues=["cpu"])
    first, second = (api.client.get(f"/v1/jobs/{j['id']}").json() for j in queued)
    assert first["estimated_start_seconds"] == 0 and second["estimated_start_seconds"] is not None


def test_a_job_stopped_by_its_time_limit_resumes_from_its_checkpoint(api: Api) -> None:
    job = api.submit("gan", TINY_CONFIGS["gan"], max_runtime_seconds=1e-6)
    stopped = api.run(job["id"])
    assert stopped["status"] == "failed" and stopped["error_code"] == "timed_out"
    assert stopped["checkpoint_step"] is not None
    r = api.client.post(f"/v1/jobs/{job['id']}/resume")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued" and r.json()["max_runtime_seconds"] is None
    done = api.run(job["id"])
    assert done["status"] == "succeeded"
    assert done["resumed_from_step"] == stopped["checkpoint_step"]
    again = api.error("POST", f"/v1/jobs/{job['id']}/resume", 409)
    assert again["code"] == "job_not_resumable"
    statuses = [e["data"]["status"] for e in events_of(api, job["id"]) if e["event"] == "status"]
    assert statuses == ["queued", "running", "failed", "queued", "running", "succeeded"]


def test_a_clone_takes_the_original_spec_with_changes(api: Api) -> None:
    original = api.submit("dqn", TINY_CONFIGS["dqn"], seed=3, name="cp", tags={"team": "rl"})
    r = api.client.post(
        f"/v1/jobs/{original['id']}/clone",
        json={"seed": 4, "config": {"total_steps": 150, "batch_size": None}},
    )
    assert r.status_code == 202, r.text
    clone = r.json()
    assert clone["id"] != original["id"] and r.headers["Location"] == f"/v1/jobs/{clone['id']}"
    assert clone["seed"] == 4 and clone["name"] == "cp" and clone["tags"] == {"team": "rl"}
    assert clone["config"]["total_steps"] == 150  # replaced
    assert clone["config"]["batch_size"] == 64  # removed by null: the default
    assert clone["config"]["hidden"] == [32, 32]  # kept
    bad = api.error(
        "POST", f"/v1/jobs/{original['id']}/clone", 422, json={"config": {"total_steps": -1}}
    )
    assert bad["field"] == "config.total_steps"
    api.error("POST", f"/v1/jobs/{original['id']}/clone", 422, json={"colour": 1})


def test_deleting_a_job_takes_its_history_and_leaves_its_model(api: Api) -> None:
    queued = api.submit("value_iteration", TINY_CONFIGS["value_iteration"])
    assert api.error("DELETE", f"/v1/jobs/{queued['id']}", 409)["code"] == "job_active"
    job = api.train("gan")
    r = api.client.delete(f"/v1/jobs/{job['id']}")
    assert r.status_code == 204, r.text
    api.error("GET", f"/v1/jobs/{job['id']}", 404)
    model = api.client.get(f"/v1/models/{job['model_id']}").json()
    assert model["job_id"] is None
    with session_scope(session_factory(api.settings.resolved_database_url)) as session:
        for table in (MetricPoint, JobEvent, JobLog):
            left = session.scalar(
                select(func.count()).select_from(table).where(table.job_id == job["id"])
            )
            assert left == 0, table
    api.error("DELETE", f"/v1/jobs/{job['id']}", 404)


def test_deleting_a_model_refuses_while_it_is_registered(api: Api) -> None:
    job = api.train("value_iteration", register_as={"name": "room", "aliases": ["production"]})
    model_id = job["model_id"]
    assert api.client.post(f"/v1/models/{model_id}/values", json={"states": [0]}).status_code == 200
    busy = api.error("DELETE", f"/v1/models/{model_id}", 409)
    assert busy["code"] == "model_in_use" and "room@1" in busy["message"]
    other = api.train("value_iteration")
    assert api.client.delete(f"/v1/models/{other['model_id']}").status_code == 204
    api.error("GET", f"/v1/models/{other['model_id']}", 404)
    api.error("POST", f"/v1/models/{other['model_id']}/values", 404, json={"states": [0]})
    assert api.client.get(f"/v1/jobs/{other['id']}").json()["model_id"] is None


def test_a_model_s_training_continues_as_a_new_job_from_its_final_state(api: Api) -> None:
    first = api.train("dqn")
    total = TINY_CONFIGS["dqn"]["total_steps"]
    r = api.client.post(
        f"/v1/models/{first['model_id']}/continue",
        json={"config": {"total_steps": total + 300}, "register_as": {"name": "longer"}},
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["continued_from"] == first["id"] and job["seed"] == first["seed"]
    assert job["progress"]["step"] == total and job["config"]["total_steps"] == total + 300
    done = api.run(job["id"])
    assert done["status"] == "succeeded" and done["resumed_from_step"] == total
    series = api.client.get(f"/v1/jobs/{job['id']}/metrics").json()["metrics"]
    assert min(min(s["steps"]) for s in series.values()) > total  # it went on, not over
    registered = api.client.get("/v1/registry/longer").json()
    assert registered["versions"][0]["model_id"] == done["model_id"]
    imported = api.client.post(
        "/v1/models",
        files={"file": ("m.pt", api.client.get(f"/v1/models/{first['model_id']}/file").content)},
    ).json()
    gone = api.error("POST", f"/v1/models/{imported['id']}/continue", 409, json={})
    assert gone["code"] == "training_state_gone"


def test_streams_are_bounded_per_process_and_not_counted_as_requests(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = api.train("value_iteration")
    monkeypatch.setattr(events_routes, "MAX_STREAMS", 0)
    body = api.error("GET", f"/v1/jobs/{job['id']}/events", 503)
    assert body["code"] == "overloaded"
    assert api.client.get(f"/v1/jobs/{job['id']}/logs").status_code == 200  # a page is no stream
    stream = {"type": "http", "method": "GET", "path": f"/v1/jobs/{job['id']}/events"}
    assert events_routes.is_stream(stream)
    assert not events_routes.is_stream(stream | {"path": f"/v1/jobs/{job['id']}"})
