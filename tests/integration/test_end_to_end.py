"""Each algorithm through real HTTP: submit, poll to succeeded, query the model."""

from __future__ import annotations

import pytest

from tests.integration.stack import Stack

pytestmark = pytest.mark.integration

TINY_GAN = {"total_steps": 60, "batch_size": 64, "eval_interval": 30, "checkpoint_interval": 30}
TINY_DQN = {
    "total_steps": 600,
    "learning_starts": 100,
    "train_frequency": 50,
    "gradient_steps": 5,
    "eval_interval": 300,
    "eval_episodes": 2,
    "checkpoint_interval": 300,
}
GRID = {"kind": "grid", "layout": ["S..#", "...G"], "slip": 0.1}


def test_algorithms_are_discoverable(stack: Stack) -> None:
    body = stack.client.get("/v1/algorithms").json()
    names = {a["name"] for a in body["data"]}
    assert {"gan", "dqn", "value_iteration", "maxent_irl"} <= names
    for algorithm in body["data"]:
        schema = algorithm["config_schema"]
        assert schema["type"] == "object" and schema.get("additionalProperties") is False
        assert algorithm["queries"] and algorithm["queue"] in ("gpu", "cpu")
    dqn = stack.client.get("/v1/algorithms/dqn").json()
    explanations = {"saliency", "grad_cam", "activations", "embedding", "gradient_flow"}
    assert set(dqn["queries"]) == {
        "q-values", "actions", "evaluate", "rollouts", "render", "confusion_matrix",
        *explanations,
    }  # fmt: skip


def test_gan_samples(stack: Stack) -> None:
    job = stack.run("gan", TINY_GAN, seed=3, name="ring", tags={"team": "gen"})
    assert job["progress"]["fraction"] == 1.0 and job["attempt"] == 1
    assert job["name"] == "ring" and job["tags"] == {"team": "gen"}
    url = f"/v1/models/{job['id']}/samples"
    a = stack.client.post(url, json={"n": 5, "seed": 11}).json()
    b = stack.client.post(url, json={"n": 5, "seed": 11}).json()
    c = stack.client.post(url, json={"n": 5, "seed": 12}).json()
    assert len(a["samples"]) == 5 and all(len(p) == 2 for p in a["samples"])
    assert a["samples"] == b["samples"] != c["samples"]

    model = stack.client.get(f"/v1/models/{job['id']}").json()
    assert model["kind"] == "gan"
    assert set(model["queries"]) == {
        "samples",
        "interpolations",
        "discriminator",
        "discriminator-scores",
        "confusion_matrix",
        "saliency",
        "grad_cam",
        "activations",
        "embedding",
        "gradient_flow",
    }
    assert model["id"] == job["model_id"] != job["id"] and model["job_id"] == job["id"]
    assert model["shapes"]["data_dim"] == 2 and model["seed"] == 3
    assert model["versions"]["torch"].startswith("2.13")
    assert "losses/generator" in model["metrics_summary"]

    metrics = stack.client.get(f"/v1/jobs/{job['id']}/metrics").json()["metrics"]
    assert {"losses/generator", "losses/discriminator"} <= set(metrics)
    steps = metrics["losses/generator"]["steps"]
    assert steps == sorted(steps) and len(steps) == len(set(steps))


def test_dqn_q_values_and_actions(stack: Stack) -> None:
    job = stack.run("dqn", TINY_DQN, seed=1)
    obs = [[0.0, 0.1, 0.02, -0.1], [0.1, 0.0, -0.05, 0.2]]
    q = stack.client.post(f"/v1/models/{job['id']}/q-values", json={"observations": obs})
    assert q.status_code == 200, q.text
    body = q.json()
    assert len(body["q_values"]) == 2 and all(len(row) == 2 for row in body["q_values"])
    greedy = [max(range(2), key=row.__getitem__) for row in body["q_values"]]
    assert body["actions"] == greedy
    acts = stack.client.post(f"/v1/models/{job['id']}/actions", json={"observations": obs})
    assert acts.json()["actions"] == greedy
    model = stack.client.get(f"/v1/models/{job['id']}").json()
    assert model["shapes"]["observation_dim"] == 4 and model["shapes"]["n_actions"] == 2


def test_value_iteration_grid_and_frozen_lake(stack: Stack) -> None:
    job = stack.run("value_iteration", {"env": GRID, "discount": 0.95})
    values = stack.client.get(f"/v1/models/{job['id']}/values").json()
    assert values["shape"] == [2, 4] and len(values["values"]) == 8
    goal = 1 * 4 + 3
    assert values["values"][goal] == 0.0  # terminal
    # The goal is reachable, so the start is worth more than stepping forever (-0.04 / 0.05)
    # and the greedy policy leaves it moving down or right.
    assert values["values"][0] > -0.8 + 0.1 and values["policy"][0] in (1, 2)
    q = stack.client.post(f"/v1/models/{job['id']}/q-values", json={"states": [0, [1, 2]]})
    assert q.status_code == 200 and len(q.json()["q_values"]) == 2

    lake = stack.run("value_iteration", {"env": {"kind": "frozen_lake"}, "discount": 0.99})
    v = stack.client.get(f"/v1/models/{lake['id']}/values").json()["values"]
    assert abs(v[0] - 0.5420) < 5e-4


def test_maxent_irl_rewards(stack: Stack) -> None:
    grid = {"kind": "grid", "layout": ["S...", "....", "...G"], "slip": 0.0}
    job = stack.run("maxent_irl", {"env": grid, "n_demos": 20, "max_iterations": 50}, seed=2)
    table = stack.client.get(f"/v1/models/{job['id']}/rewards").json()
    assert len(table["rewards"]) == 12 and table["shape"] == [3, 4]
    picked = stack.client.post(
        f"/v1/models/{job['id']}/rewards", json={"states": [[2, 3], 0]}
    ).json()
    assert picked["rewards"] == [table["rewards"][11], table["rewards"][0]]
    assert picked["rewards"][0] > picked["rewards"][1]  # the goal beats the start
    assert stack.client.get(f"/v1/models/{job['id']}/values").status_code == 200


def test_list_jobs_filters_and_pages(stack: Stack) -> None:
    stack.run("value_iteration", {"env": GRID})
    listed = stack.client.get(
        "/v1/jobs", params={"algorithm": "value_iteration", "limit": 1}
    ).json()
    assert listed["count"] >= 1 and len(listed["data"]) == 1 and listed["limit"] == 1
    assert all(j["algorithm"] == "value_iteration" for j in listed["data"])
    ok = stack.client.get("/v1/jobs", params={"status": "succeeded"}).json()
    assert all(j["status"] == "succeeded" for j in ok["data"])
