"""The blocking client against the real app (TestClient as its `http`): every resource,
the typed errors with the server's body, and waiting through the events stream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from crucible_client import (
    AuthenticationError,
    Client,
    Conflict,
    CrucibleConnectionError,
    EndEvent,
    JobStatus,
    NotFound,
    PermissionDenied,
    ProgressEvent,
    StatusEvent,
    ValidationError,
)
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.api.conftest import Api
from tests.client.conftest import ADMIN, BASE_URL, GRID
from tests.tiny_configs import TINY_CONFIGS
from worker.runner import run_job

DEMOS = [{"states": [0, 1, 2, 5], "actions": [2, 2, 1, 1]}]


def test_algorithms_and_environments(client: Client) -> None:
    algorithms = {a.name: a for a in client.algorithms()}
    assert "q-values" in algorithms["dqn"].queries
    assert algorithms["dqn"].config_schema["properties"]
    assert any(e.name == "CartPole-v1" for e in client.environments())


def test_submit_run_get_list_and_iterate(client: Client, service: Api) -> None:
    job = client.submit("value_iteration", GRID, seed=3, name="sdk-grid", tags={"team": "sdk"})
    assert job.status == JobStatus.queued and job.seed == 3 and not job.finished
    service.run(job.id)
    done = client.get(job.id)
    assert done.status == JobStatus.succeeded and done.model_id and done.finished
    page = client.list_jobs(tag={"team": "sdk"}, name="sdk-grid", status="succeeded")
    assert [j.id for j in page.data] == [job.id] and page.count == 1
    assert [j.id for j in client.list_jobs(tag={"team": None}, limit=1).data] == [job.id]
    assert job.id in {j.id for j in client.iter_jobs(algorithm="value_iteration")}


def test_idempotent_submission(client: Client) -> None:
    first = client.submit("value_iteration", GRID, idempotency_key="sdk-once")
    again = client.submit("value_iteration", GRID, idempotency_key="sdk-once")
    assert again.id == first.id
    with pytest.raises(Conflict) as caught:
        client.submit("value_iteration", {**GRID, "discount": 0.5}, idempotency_key="sdk-once")
    assert caught.value.code == "idempotency_key_reused"
    client.cancel(first.id)


def test_typed_errors_carry_the_servers_body(client: Client) -> None:
    with pytest.raises(NotFound) as missing:
        client.get("no-such-job")
    error = missing.value
    assert (error.status, error.code, error.field) == (404, "job_not_found", "id")
    assert error.request_id and error.body["message"] == error.message
    with pytest.raises(ValidationError) as invalid:
        client.submit("dqn", {"total_steps": "many"})
    assert invalid.value.status == 422 and invalid.value.field == "config.total_steps"
    assert invalid.value.errors
    job = client.submit("value_iteration", GRID)
    client.cancel(job.id)
    with pytest.raises(Conflict) as finished:
        client.cancel(job.id)
    assert finished.value.code == "job_finished"
    with pytest.raises(Conflict) as never_started:  # cancelled while queued: no checkpoint
        client.resume(job.id)
    assert never_started.value.status == 409


def test_connection_errors_are_typed() -> None:
    with Client("http://127.0.0.1:9", timeout=2) as nowhere, pytest.raises(CrucibleConnectionError):
        nowhere.algorithms()


def test_wait_and_events_of_a_finished_job(client: Client, service: Api) -> None:
    job = client.submit("value_iteration", GRID)
    service.run(job.id)
    assert client.wait(job.id, timeout=30).status == JobStatus.succeeded
    seen = list(client.events(job.id))
    assert isinstance(seen[-1], EndEvent) and seen[-1].job.status == JobStatus.succeeded
    statuses = [e.status for e in seen if isinstance(e, StatusEvent)]
    assert statuses[-1] == JobStatus.succeeded
    assert any(isinstance(e, ProgressEvent) for e in seen)
    # Resuming after an event sends only what came after it.
    middle = seen[len(seen) // 2]
    rest = list(client.events(job.id, last_event_id=middle.event_id))
    assert isinstance(rest[-1], EndEvent) and len(rest) < len(seen)


def older_server(app: ASGIApp) -> ASGIApp:
    """The app as a server from before the events stream: 404 for `/events`, as FastAPI
    answers a route it does not have; everything else served by the real app."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/events"):
            body = {"code": "not_found", "message": "Not Found"}
            await JSONResponse(body, status_code=404)(scope, receive, send)
        else:
            await app(scope, receive, send)

    return serve


def test_wait_polls_when_the_server_cannot_stream(service: Api) -> None:
    client = Client(BASE_URL, http=TestClient(older_server(service.app)))
    job = client.submit("value_iteration", GRID)
    with pytest.raises(NotFound) as missing:
        next(client.events(job.id))
    assert missing.value.code == "not_found"
    service.run(job.id)
    assert client.wait(job.id, timeout=10).status == JobStatus.succeeded


def test_logs(client: Client, dqn_job: dict[str, Any]) -> None:
    page = client.logs(dqn_job["id"], limit=2)
    assert page.job_finished and len(page.data) <= 2
    everything = list(client.follow_logs(dqn_job["id"]))
    assert [r.id for r in everything[: len(page.data)]] == [r.id for r in page.data]
    if page.has_more:
        following = client.logs(dqn_job["id"], after=page.next_after)
        assert following.data[0].id > page.data[-1].id


def test_metrics_curves_and_queries(client: Client, dqn_job: dict[str, Any]) -> None:
    metrics = client.metrics(dqn_job["id"])
    assert metrics.job_id == dqn_job["id"] and metrics.metrics
    assert client.curves_png(dqn_job["id"]).startswith(b"\x89PNG\r\n\x1a\n")
    model = dqn_job["model_id"]
    assert "q-values" in client.queries(model)
    answer = client.query(model, "q-values", {"observations": [[0.0, 0.0, 0.0, 0.0]]})
    assert isinstance(answer, dict) and len(answer["q_values"][0]) == 2
    npy = client.query(model, "q-values", {"observations": [[0.0] * 4]}, format="npy")
    assert isinstance(npy, bytes) and npy.startswith(b"\x93NUMPY")


def test_a_heavy_query_is_polled_until_done(
    client: Client, service: Api, dqn_job: dict[str, Any]
) -> None:
    """A heavy query answers 202 and a Location; the client polls it. The result is made
    first here (the worker's `run_job` on the query job): an identical request reuses it,
    and still answers 202 with its Location."""
    request = {"episodes": 21, "seed": 5}
    url = f"/v1/models/{dqn_job['model_id']}/evaluate"
    pending = service.client.post(url, json=request)
    assert pending.status_code == 202
    run_job(pending.json()["id"], service.settings, worker="query-worker")
    answer = client.query(dqn_job["model_id"], "evaluate", request, timeout=30)
    assert isinstance(answer, dict) and len(answer["returns"]) == 21


def test_models_names_and_files(client: Client, dqn_job: dict[str, Any]) -> None:
    model = client.get_model(dqn_job["id"])  # a job id works as a model reference
    assert model.id == dqn_job["model_id"] and model.algorithm == "dqn"
    assert model.id in {m.id for m in client.list_models(algorithm="dqn").data}
    version = client.register("sdk-cartpole", model.id)
    alias = client.set_alias("sdk-cartpole", "production", version.version)
    assert alias.model_id == model.id
    assert client.get_model("sdk-cartpole@production").id == model.id
    named = client.registry("sdk-cartpole")
    assert named.aliases == {"production": version.version}  # type: ignore[union-attr]
    assert "sdk-cartpole" in {n.name for n in client.registry().data}  # type: ignore[union-attr]
    copy = client.import_model(client.download_model(model.id))
    assert copy.id != model.id and copy.kind == model.kind and copy.job_id is None
    client.delete_model(copy.id)
    with pytest.raises(NotFound):
        client.get_model(copy.id)


def test_datasets(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "demos.json"
    path.write_text(json.dumps(DEMOS))
    uploaded = client.upload(path, "trajectories", name="sdk-demos", progress=True)
    assert uploaded.kind == "trajectories" and uploaded.rows
    assert client.upload(path.read_bytes(), "trajectories").id == uploaded.id  # same content
    assert client.get_dataset(uploaded.id).name == "sdk-demos"
    assert uploaded.id in {d.id for d in client.list_datasets(kind="trajectories").data}
    client.delete_dataset(uploaded.id)
    with pytest.raises(NotFound):
        client.get_dataset(uploaded.id)


def test_clone_and_delete(client: Client, service: Api) -> None:
    job = client.submit("value_iteration", GRID, name="original", tags={"k": "v"})
    service.run(job.id)
    copy = client.clone(job.id, seed=7, config={"discount": 0.5})
    assert copy.id != job.id and copy.seed == 7 and copy.name == "original"
    assert copy.config["discount"] == 0.5 and copy.config["env"] == job.config["env"]
    client.cancel(copy.id)
    client.delete_job(copy.id)
    with pytest.raises(NotFound):
        client.get(copy.id)


def test_a_model_s_training_continues(client: Client, service: Api) -> None:
    job = client.submit("dqn", TINY_CONFIGS["dqn"], seed=4)
    service.run(job.id)
    model_id = client.get(job.id).model_id
    assert model_id is not None
    total = TINY_CONFIGS["dqn"]["total_steps"]
    longer = client.continue_training(model_id, config={"total_steps": total + 200})
    assert longer.continued_from == job.id and longer.progress.step == total
    service.run(longer.id)
    finished = client.get(longer.id)
    assert finished.status == JobStatus.succeeded and finished.resumed_from_step == total


def test_keys_and_authentication(secured: Api) -> None:
    admin = Client(BASE_URL, ADMIN, http=secured.client)
    created = admin.create_key("team-sdk", ["read"], name="reader")
    assert created.key.startswith("crk_") and created.scopes == ["read"]
    reader = Client(BASE_URL, created.key, http=secured.client)
    assert reader.whoami().tenant == "team-sdk"
    with pytest.raises(PermissionDenied) as denied:
        reader.submit("value_iteration", GRID)
    assert denied.value.code == "missing_scope"
    assert created.id in {k.id for k in admin.list_keys(tenant="team-sdk").data}
    assert admin.revoke_key(created.id).state == "revoked"
    with pytest.raises(AuthenticationError) as refused:
        reader.algorithms()
    assert refused.value.code == "api_key_revoked"


def test_key_from_the_environment(secured: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRUCIBLE_API_KEY", ADMIN)
    assert "admin" in Client(BASE_URL, http=secured.client).whoami().scopes
    with pytest.raises(AuthenticationError):
        Client(BASE_URL, "crk_wrong", http=secured.client).whoami()
