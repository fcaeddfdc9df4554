"""Inverse RL through HTTP: demonstrations uploaded, rolled out by a registered model or
kept from a rollouts query; the learned reward asked for by state, by state-action and by
feature vector; and every bad input a 4xx naming the field."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ml.irl.problem import DEFAULT_LAYOUT
from tests.api.conftest import Api
from tests.api.test_datasets import npz, upload

GRID = {"kind": "grid", "layout": DEFAULT_LAYOUT, "slip": 0.1}
# Along the top row, then down the right edge to the goal (24).
TOP_THEN_DOWN = {"states": [0, 1, 2, 3, 4, 9, 14, 19], "actions": [2, 2, 2, 2, 1, 1, 1, 1]}


# Unlike the tiny test config, fit to convergence.
CONVERGE = {"optimizer": "lbfgs", "tolerance": 1e-3, "occupancy_tolerance": 1e-3}


def trajectories(episodes: list[dict[str, Any]]) -> bytes:
    return json.dumps(episodes).encode()


def upload_json(api: Api, content: bytes, kind: str) -> Any:
    return api.client.post(
        "/v1/datasets", files={"file": ("data.json", content)}, data={"kind": kind}
    )


def dataset_demos(reference: dict[str, Any]) -> dict[str, Any]:
    return {"source": "dataset", "dataset": reference}


def test_uploaded_demonstrations_train_and_the_reward_is_queried(api: Api) -> None:
    r = upload_json(api, trajectories([TOP_THEN_DOWN] * 10), "trajectories")
    assert r.status_code == 201, r.text
    demos = dataset_demos(r.json()["reference"])
    job = api.train("maxent_irl", {"env": GRID, "demonstrations": demos, **CONVERGE})
    url = f"/v1/models/{job['model_id']}"
    table = api.client.get(f"{url}/rewards").json()
    assert table["form"] == "state" and table["shape"] == [5, 5] and len(table["grid"]) == 5
    assert len(table["rewards"]) == 25 and table["layout"] == DEFAULT_LAYOUT
    assert "action_names" not in table or table["action_names"] is None
    # The demonstrated path is worth more than the cells it never visits.
    rewards = np.asarray(table["rewards"])
    assert rewards[[4, 9, 14, 19]].min() > rewards[[10, 11, 15, 20, 21]].max()
    some = api.client.post(f"{url}/rewards", json={"states": [0, [4, 4]]}).json()
    assert some["rewards"] == [table["rewards"][0], table["rewards"][24]]
    one_hot = np.eye(25)[[0, 24]].tolist()  # one-hot features: theta . f is r(s)
    by_features = api.client.post(f"{url}/rewards", json={"features": one_hot}).json()
    np.testing.assert_allclose(by_features["rewards"], some["rewards"])
    values = api.client.get(f"{url}/values").json()
    assert values["policy"][0] == 2 and values["policy"][9] == 1  # right, then down
    soft = {"states": [0] * 20, "policy": "soft", "seed": 3}
    drawn = api.client.post(f"{url}/actions", json=soft).json()["actions"]
    assert drawn == api.client.post(f"{url}/actions", json=soft).json()["actions"]
    assert drawn.count(2) > 10  # mostly right, sometimes not: a soft policy
    played = api.client.post(f"{url}/rollouts", json={"episodes": 2, "seed": 0}).json()
    assert played["episodes"] == 2 and played["states"][0] == 0
    done = api.client.get(f"/v1/jobs/{job['id']}").json()
    assert "evd" not in done["summary"] if "summary" in done else True


def test_a_registered_models_rollouts_demonstrate(api: Api) -> None:
    api.train(
        "value_iteration",
        {"env": GRID, "discount": 0.95},
        register_as={"name": "teacher", "aliases": ["prod"]},
    )
    demos = {"source": "model", "model": {"kind": "model", "model": "teacher@prod"}}
    job = api.train("maxent_irl", {"env": GRID, "demonstrations": demos})
    learned = api.client.get(f"/v1/models/{job['model_id']}/values").json()
    teacher = api.client.get("/v1/models/teacher@prod/values").json()
    free = [i for i, c in enumerate("".join(DEFAULT_LAYOUT)) if c in "S."]
    same = sum(learned["policy"][i] == teacher["policy"][i] for i in free)
    assert same >= 0.8 * len(free)

    missing = {"source": "model", "model": {"kind": "model", "model": "teacher@staging"}}
    body = api.error(
        "POST",
        "/v1/jobs",
        422,
        json={"algorithm": "maxent_irl", "config": {"env": GRID, "demonstrations": missing}},
    )
    assert body["code"] == "model_not_found"
    assert body["field"] == "config.demonstrations.model.model"

    other = api.train("value_iteration", {"env": {"layout": ["S.G"]}})
    elsewhere = {"source": "model", "model": {"kind": "model", "model": other["model_id"]}}
    failed = api.run(api.submit("maxent_irl", {"env": GRID, "demonstrations": elsewhere})["id"])
    assert failed["status"] == "failed" and "25 states" in failed["error"], failed


def test_rollouts_kept_as_a_dataset_demonstrate(api: Api) -> None:
    teacher = api.train("value_iteration", {"env": GRID, "discount": 0.95})
    kept = api.client.post(
        f"/v1/models/{teacher['model_id']}/rollouts",
        json={"episodes": 30, "seed": 1, "save_as_dataset": True},
    ).json()["dataset"]
    job = api.train(
        "maxent_irl",
        {"env": GRID, "demonstrations": dataset_demos({"kind": "uploaded", "id": kept["id"]})},
    )
    values = api.client.get(f"/v1/models/{job['model_id']}/values").json()
    assert values["policy"][0] in (1, 2)  # down or right, towards G


def test_deep_reward_answers_unseen_feature_vectors(api: Api) -> None:
    job = api.train("deep_maxent_irl")
    url = f"/v1/models/{job['model_id']}/rewards"
    table = api.client.get(url).json()
    assert table["form"] == "state" and table["shape"] == [6, 6]
    # Objectworld's 4 continuous features: distances to the nearest colour of each kind.
    unseen = api.client.post(url, json={"features": [[0.0, 9.0, 1.0, 2.0], [3, 3, 3, 3]]})
    assert unseen.status_code == 200 and len(unseen.json()["rewards"]) == 2
    wrong = api.error("POST", url, 422, json={"features": [[1.0, 2.0]]})
    assert wrong["field"] == "features" and "4 numbers" in wrong["message"]


def test_state_action_rewards_answer_per_action(api: Api) -> None:
    job = api.train("maxent_irl", {"reward": "state_action"})
    url = f"/v1/models/{job['model_id']}/rewards"
    rows = api.client.post(url, json={"states": [0, 1]}).json()
    assert rows["form"] == "state_action" and len(rows["rewards"][0]) == 4
    assert rows["action_names"] == ["left", "down", "right", "up"]
    pairs = api.client.post(url, json={"states": [0, 1], "actions": [2, 1]}).json()
    assert pairs["rewards"] == [rows["rewards"][0][2], rows["rewards"][1][1]]
    body = api.error("POST", url, 422, json={"states": [0, 1], "actions": [2]})
    assert body["field"] == "actions"
    body = api.error("POST", url, 422, json={"states": [0], "actions": [9]})
    assert body["field"] == "actions" and "0..3" in body["message"]


def test_bad_demonstrations_are_refused_at_submission(api: Api) -> None:
    def refused(reference: dict[str, Any], config: dict[str, Any] | None = None) -> Any:
        spec = {"env": GRID, "demonstrations": dataset_demos(reference), **(config or {})}
        return api.error("POST", "/v1/jobs", 422, json={"algorithm": "maxent_irl", "config": spec})

    cases: list[tuple[list[dict[str, Any]], str]] = [
        ([{"states": [0, 40], "actions": [0, 1]}], "41 states"),
        ([{"states": [0, 1], "actions": [0, 5]}], "6 actions"),
        ([{"observations": [[0.0], [1.0]], "actions": [0, 1]}], "`states`"),
    ]
    for episodes, message in cases:
        r = upload_json(api, trajectories(episodes), "trajectories")
        assert r.status_code == 201, r.text
        body = refused(r.json()["reference"])
        assert body["field"] == "config.demonstrations.dataset.id"
        assert message in body["message"], body
    mdp = upload(api, npz(P=np.full((2, 1, 2), 0.5), R=np.zeros(2)), kind="mdp")
    body = refused(mdp.json()["reference"])
    assert "takes trajectories" in body["message"]
    body = refused({"kind": "uploaded", "id": "no-such-dataset"})
    assert body["code"] == "dataset_not_found"
    body = api.error(
        "POST",
        "/v1/jobs",
        422,
        json={"algorithm": "maxent_irl", "config": {"env": GRID, "features": "world"}},
    )
    assert body["field"].startswith("config") and "objectworld" in body["message"]
    featureless = {"kind": "mdp", "dataset": mdp.json()["reference"]}
    body = api.error(
        "POST",
        "/v1/jobs",
        422,
        json={"algorithm": "maxent_irl", "config": {"env": featureless, "features": "world"}},
    )
    assert body["field"] == "config.features"


def test_reward_queries_refuse_what_does_not_fit(api: Api) -> None:
    job = api.train("maxent_irl")
    url = f"/v1/models/{job['model_id']}"
    body = api.error("POST", f"{url}/rewards", 422, json={"states": [0], "features": [[1.0]]})
    assert "not both" in body["message"]
    body = api.error("POST", f"{url}/rewards", 422, json={"states": [0], "actions": [1]})
    assert body["field"] == "actions" and "states alone" in body["message"]
    body = api.error("POST", f"{url}/rewards", 422, json={"features": [[1.0] * 3]})
    assert body["field"] == "features" and "25 numbers" in body["message"]
    body = api.error(
        "POST", f"{url}/actions", 422, json={"states": [0], "policy": "soft", "epsilon": 0.5}
    )
    assert body["field"] == "epsilon"
    dqn = api.train("value_iteration", {"env": GRID})
    body = api.error(
        "POST",
        f"/v1/models/{dqn['model_id']}/actions",
        422,
        json={"states": [0], "policy": "soft"},
    )
    assert body["field"] == "policy"
