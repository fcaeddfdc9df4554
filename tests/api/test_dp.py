"""Dynamic programming through HTTP: an uploaded MDP trains policy iteration, policy
evaluation evaluates a registered model named by alias, the worlds' shapes reach the
queries, and the bad inputs of each are 4xx naming the field."""

from __future__ import annotations

import numpy as np

from tests.api.conftest import Api
from tests.api.test_datasets import npz, upload

FOREST_P = np.stack(
    [
        np.array([[0.1, 0.9, 0.0], [0.1, 0.0, 0.9], [0.1, 0.0, 0.9]]),  # wait
        np.array([[1.0, 0.0, 0.0]] * 3),  # cut
    ],
    axis=1,
)  # P[s, a, s'] of pymdptoolbox's forest example
FOREST_R = np.array([[0.0, 0.0], [0.0, 1.0], [4.0, 2.0]])


def test_an_uploaded_mdp_trains_policy_iteration(api: Api) -> None:
    r = upload(api, npz(P=FOREST_P, R=FOREST_R), kind="mdp")
    assert r.status_code == 201, r.text
    env = {"kind": "mdp", "dataset": r.json()["reference"]}
    job = api.train("policy_iteration", {"env": env, "discount": 0.9})
    model = job["model_id"]
    values = api.client.get(f"/v1/models/{model}/values").json()
    np.testing.assert_allclose(values["values"], [26.244, 29.484, 33.484], atol=1e-3)
    assert values["shape"] == [3] and values["grid"] is None and values["layout"] is None
    assert values["action_names"] == ["a0", "a1"] and values["policy"] == [0, 0, 0]
    q = api.client.post(f"/v1/models/{model}/q-values", json={"states": [2]}).json()
    assert q["actions"] == [0] and len(q["q_values"][0]) == 2
    bad = api.error("POST", f"/v1/models/{model}/q-values", 422, json={"states": [[0, 1]]})
    assert bad["field"] == "states.0"


def test_policy_evaluation_of_a_registered_model(api: Api) -> None:
    lake = {"kind": "frozen_lake"}
    optimal = api.train(
        "value_iteration",
        {"env": lake, "sweeps": "auto"},
        register_as={"name": "lake", "aliases": ["prod"]},
    )
    policy = {"kind": "model", "model": "lake@prod"}
    evaluated = api.train("policy_evaluation", {"env": lake, "policy": policy})
    mine = api.client.get(f"/v1/models/{evaluated['model_id']}/values").json()
    theirs = api.client.get(f"/v1/models/{optimal['model_id']}/values").json()
    np.testing.assert_allclose(mine["values"], theirs["values"], atol=1e-6)
    assert mine["policy"] == theirs["policy"]

    missing = {"kind": "model", "model": "lake@staging"}
    body = api.error(
        "POST",
        "/v1/jobs",
        422,
        json={"algorithm": "policy_evaluation", "config": {"env": lake, "policy": missing}},
    )
    assert body["code"] == "model_not_found" and body["field"] == "config.policy.model"


def test_a_model_on_another_world_fails_the_job_with_the_reason(api: Api) -> None:
    small = api.train("value_iteration", {"env": {"layout": ["S.G"]}})
    policy = {"kind": "model", "model": small["model_id"]}
    job = api.submit("policy_evaluation", {"env": {"kind": "frozen_lake"}, "policy": policy})
    done = api.run(job["id"])
    assert done["status"] == "failed" and "16 states" in done["error"], done


def test_large_worlds_answer_by_state_and_walls_are_not_terminal(api: Api) -> None:
    env = {"kind": "grid", "size": [300, 300], "slip": 0.1}
    job = api.train("value_iteration", {"env": env, "tolerance": 1e-4, "checkpoint_interval": 50})
    url = f"/v1/models/{job['model_id']}/values"
    body = api.error("GET", url, 422)
    assert body["field"] == "states" and "90000 states" in body["message"]
    some = api.client.post(url, json={"states": [[299, 298], 0]}).json()
    assert some["states"] == [299 * 300 + 298, 0] and some["policy"][0] == 2  # right, to G
    walls = api.train("value_iteration", {"env": {"layout": ["S#G", "..."]}})
    table = api.client.get(f"/v1/models/{walls['model_id']}/values").json()
    assert table["terminal"] == [False, False, True, False, False, False]
    assert table["wall"] == [False, True, False, False, False, False]


def test_taxi_states_by_coordinates(api: Api) -> None:
    job = api.train("policy_iteration", {"env": {"kind": "taxi"}})
    url = f"/v1/models/{job['model_id']}/actions"
    # Taxi at (0, 0) with the passenger in it, bound for location 0 (R, at (0, 0)): drop off.
    assert api.client.post(url, json={"states": [[0, 0, 4, 0]]}).json()["actions"] == [5]
    body = api.error("POST", url, 422, json={"states": [[0, 0, 5, 0]]})
    assert "5x5x5x4" in body["message"]
