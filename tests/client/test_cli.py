"""The `crucible` command line against the real app: the TestClient goes in as the root
context's object, where the global options would otherwise build a client."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from crucible_client.cli import app
from crucible_client.cli.common import apply_sets
from typer.testing import CliRunner, Result

from tests.api.conftest import Api
from tests.client.conftest import ADMIN, BASE_URL

runner = CliRunner()


def crucible(service: Api, *args: str) -> Result:
    return runner.invoke(app, ["--url", BASE_URL, *args], obj=service.client)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_set_parses_json_nests_dotted_keys_and_keeps_strings() -> None:
    found = apply_sets(
        {"env": {"kind": "grid", "slip": 0.1}},
        ["total_steps=20000", "env=CartPole-v1", "net.hidden=[64, 64]", "flag=true"],
    )
    assert found == {
        "env": "CartPole-v1",
        "total_steps": 20000,
        "net": {"hidden": [64, 64]},
        "flag": True,
    }
    assert apply_sets({"env": {"kind": "grid"}}, ["env.slip=0.2"]) == {
        "env": {"kind": "grid", "slip": 0.2}
    }


def test_train_with_sets_then_list_and_show(service: Api, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"discount": 0.5}))
    result = crucible(
        service, "train", "value_iteration", "--config", str(config),
        "--set", "env.kind=grid", "--set", 'env.layout=["S.", ".G"]', "--set", "discount=0.8",
        "--seed", "2", "--name", "cli-grid", "--tag", "team=cli", "--json",
    )  # fmt: skip
    job = as_json(result)
    assert job["config"]["env"]["layout"] == ["S.", ".G"] and job["config"]["discount"] == 0.8
    assert (job["seed"], job["name"], job["tags"]) == (2, "cli-grid", {"team": "cli"})
    service.run(job["id"])
    listed = as_json(crucible(service, "jobs", "ls", "--tag", "team=cli", "--json"))
    assert [j["id"] for j in listed["data"]] == [job["id"]]
    assert listed["data"][0]["status"] == "succeeded"
    table = crucible(service, "jobs", "ls", "--name", "cli-grid")
    assert table.exit_code == 0 and job["id"][:8] in table.stdout
    assert as_json(crucible(service, "jobs", "show", job["id"], "--json"))["id"] == job["id"]
    watched = crucible(service, "jobs", "watch", job["id"], "--json")
    assert as_json(watched)["status"] == "succeeded"
    shown = crucible(service, "jobs", "watch", job["id"])  # the live bar goes to stderr
    assert shown.exit_code == 0 and "succeeded" in shown.stdout and job["id"][:8] in shown.stderr


def test_watch_exits_non_zero_for_a_job_that_did_not_succeed(service: Api) -> None:
    job = as_json(crucible(service, "train", "value_iteration", "--set", "discount=0.9", "--json"))
    assert (
        as_json(crucible(service, "jobs", "cancel", job["id"], "--json"))["status"] == "cancelled"
    )
    watched = crucible(service, "jobs", "watch", job["id"])
    assert watched.exit_code == 1


def test_query_plot_and_models(service: Api, dqn_job: dict[str, Any], tmp_path: Path) -> None:
    model = dqn_job["model_id"]
    answer = as_json(
        crucible(service, "query", model, "q-values", "--obs", "[[0,0,0,0]]", "--json")
    )
    assert len(answer["q_values"]) == 1 and len(answer["q_values"][0]) == 2
    out = tmp_path / "curves.png"
    assert crucible(service, "plot", dqn_job["id"], "--out", str(out)).exit_code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    npy = tmp_path / "q.npy"
    result = crucible(
        service, "query", model, "q-values", "--set", "observations=[[0,0,0,0]]",
        "--format", "npy", "--out", str(npy),
    )  # fmt: skip
    assert result.exit_code == 0 and npy.read_bytes().startswith(b"\x93NUMPY")
    assert crucible(service, "models", "register", "cli-cartpole", model).exit_code == 0
    alias = as_json(crucible(service, "models", "alias", "cli-cartpole", "prod", "1", "--json"))
    assert alias["model_id"] == model
    shown = as_json(crucible(service, "models", "show", "cli-cartpole@prod", "--json"))
    assert shown["id"] == model
    assert model in crucible(service, "models", "ls").stdout


def test_datasets(service: Api, tmp_path: Path) -> None:
    path = tmp_path / "demos.json"
    path.write_text(json.dumps([{"states": [0, 1, 2], "actions": [2, 2, 1]}]))
    uploaded = as_json(
        crucible(service, "datasets", "upload", str(path), "--kind", "trajectories", "--json")
    )
    assert uploaded["kind"] == "trajectories"
    listed = as_json(crucible(service, "datasets", "ls", "--kind", "trajectories", "--json"))
    assert uploaded["id"] in {d["id"] for d in listed["data"]}
    assert crucible(service, "datasets", "delete", uploaded["id"]).exit_code == 0


def test_algorithms(service: Api) -> None:
    found = as_json(crucible(service, "algorithms", "--json"))
    assert "dqn" in {a["name"] for a in found}
    assert "value_iteration" in crucible(service, "algorithms").stdout


@pytest.mark.parametrize("json_flag", [False, True])
def test_errors_print_the_code_and_exit_2_for_a_4xx(service: Api, json_flag: bool) -> None:
    result = crucible(service, "jobs", "show", "no-such-job", *(["--json"] if json_flag else []))
    assert result.exit_code == 2
    if json_flag:
        body = json.loads(result.stdout)
        assert (body["status"], body["code"], body["field"]) == (404, "job_not_found", "id")
    else:
        assert "job_not_found" in result.stderr and result.stdout == ""


def test_invalid_config_names_the_field(service: Api) -> None:
    result = crucible(service, "train", "value_iteration", "--set", "discount=2", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["field"] == "config.discount"


def test_connection_failure_exits_1() -> None:
    result = runner.invoke(app, ["--url", "http://127.0.0.1:9", "--timeout", "2", "algorithms"])
    assert result.exit_code == 1 and "connection_error" in result.stderr


def test_train_watch_follows_the_job_to_its_end(service: Api) -> None:
    """`--watch` reads the events stream while a worker (a thread here, calling the worker's
    `run_job` as tests/api does) runs the job."""
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            queued = service.client.get(
                "/v1/jobs", params={"tag": "team=watch", "status": "queued"}
            )
            for job in queued.json()["data"]:
                service.run(job["id"])
            stop.wait(0.1)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        result = crucible(
            service, "train", "value_iteration", "--set", "discount=0.9", "--tag", "team=watch",
            "--watch", "--json",
        )  # fmt: skip
    finally:
        stop.set()
        thread.join(10)
    assert as_json(result)["status"] == "succeeded"


def test_logs_clone_and_delete(service: Api) -> None:
    job = as_json(crucible(service, "train", "value_iteration", "--name", "to-clone", "--json"))
    service.run(job["id"])
    lines = crucible(service, "jobs", "logs", job["id"], "--json").stdout.splitlines()
    followed = crucible(service, "jobs", "logs", job["id"], "--follow", "--json").stdout
    assert lines and followed.splitlines()[: len(lines)] == lines
    assert all(json.loads(line)["message"] for line in lines)
    copy = as_json(
        crucible(
            service, "jobs", "clone", job["id"], "--seed", "5", "--set", "discount=0.7", "--json"
        )
    )
    assert (copy["seed"], copy["name"], copy["config"]["discount"]) == (5, "to-clone", 0.7)
    crucible(service, "jobs", "cancel", copy["id"])
    assert crucible(service, "jobs", "delete", copy["id"]).exit_code == 0
    assert crucible(service, "jobs", "show", copy["id"]).exit_code == 2


def test_a_model_continues_training(service: Api, dqn_job: dict[str, Any]) -> None:
    total = dqn_job["config"]["total_steps"]
    longer = as_json(
        crucible(
            service,
            "models",
            "continue",
            dqn_job["model_id"],
            "--set",
            f"total_steps={total + 100}",
            "--json",
        )
    )
    assert longer["continued_from"] == dqn_job["id"] and longer["progress"]["step"] == total
    assert longer["config"]["total_steps"] == total + 100


def test_keys(secured: Api) -> None:
    def admin(*args: str) -> Result:
        return runner.invoke(
            app, ["--url", BASE_URL, "--api-key", ADMIN, *args], obj=secured.client
        )

    created = as_json(admin("keys", "create", "--tenant", "team-cli", "--scopes", "read", "--json"))
    assert created["key"].startswith("crk_") and created["scopes"] == ["read"]
    assert created["id"] in admin("keys", "ls").stdout
    assert as_json(admin("keys", "revoke", created["id"], "--json"))["state"] == "revoked"
    refused = runner.invoke(app, ["--api-key", created["key"], "jobs", "ls"], obj=secured.client)
    assert refused.exit_code == 2 and "api_key_revoked" in refused.stderr
