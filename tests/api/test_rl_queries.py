"""The decision queries of the RL models through HTTP: continuous critics and actors,
epsilon-greedy actions, the evaluation's confidence interval, and rollouts kept as a
`trajectories` dataset."""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.api.conftest import Api
from tests.api.test_datasets import npz, upload
from tests.api.test_dp import FOREST_P, FOREST_R

PENDULUM_OBS = [[1.0, 0.0, 0.0], [0.0, 1.0, -2.0]]
CARTPOLE_OBS = [[0.0, 0.0, 0.0, 0.0], [0.01, -0.2, 0.03, 0.3], [-0.05, 0.4, -0.1, -0.6]]


def post(api: Api, model: str, query: str, body: dict[str, Any]) -> Any:
    r = api.client.post(f"/v1/models/{model}/{query}", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_critic_values_and_actor_actions(
    shared_api: Api, trained: dict[str, dict[str, Any]]
) -> None:
    for name in ("td3", "ddpg"):
        model = trained[name]["model_id"]
        body = post(
            shared_api,
            model,
            "q-values",
            {"observations": PENDULUM_OBS, "actions": [[0.5], [-2.0]]},
        )
        assert [len(row) for row in body["q_values"]] == [1, 1]
        assert len(body["actions"]) == 2 and len(body["actions"][0]) == 1
        noisy = {"observations": PENDULUM_OBS, "noise": 0.5, "seed": 3}
        first = post(shared_api, model, "actions", noisy)["actions"]
        assert first == post(shared_api, model, "actions", noisy)["actions"]
        assert all(-2.0 <= a[0] <= 2.0 for a in first)
        url = f"/v1/models/{model}/q-values"
        error = shared_api.error("POST", url, 422, json={"observations": PENDULUM_OBS})
        assert error["field"] == "actions"
        error = shared_api.error(
            "POST", url, 422, json={"observations": PENDULUM_OBS, "actions": [[0.1]]}
        )
        assert "one action per observation" in error["message"]
        error = shared_api.error(
            "POST",
            f"/v1/models/{model}/actions",
            422,
            json={"observations": PENDULUM_OBS, "epsilon": 0.2},
        )
        assert error["field"] == "epsilon"


def test_epsilon_greedy_actions(shared_api: Api, trained: dict[str, dict[str, Any]]) -> None:
    model = trained["dqn"]["model_id"]
    q = post(shared_api, model, "q-values", {"observations": CARTPOLE_OBS})
    greedy = post(shared_api, model, "actions", {"observations": CARTPOLE_OBS})["actions"]
    assert greedy == q["actions"]
    many = {"observations": CARTPOLE_OBS * 100, "epsilon": 1.0, "seed": 1}
    random = post(shared_api, model, "actions", many)["actions"]
    assert random == post(shared_api, model, "actions", many)["actions"]
    assert set(random) == {0, 1}
    error = shared_api.error(
        "POST",
        f"/v1/models/{model}/q-values",
        422,
        json={"observations": CARTPOLE_OBS, "actions": [[1]] * 3},
    )
    assert error["field"] == "actions"


def test_evaluation_has_a_confidence_interval(
    shared_api: Api, trained: dict[str, dict[str, Any]]
) -> None:
    body = post(shared_api, trained["dqn"]["model_id"], "evaluate", {"episodes": 5, "seed": 7})
    low, high = body["ci95"]
    assert low <= body["mean"] <= high
    one = post(shared_api, trained["dqn"]["model_id"], "evaluate", {"episodes": 1})
    assert one["ci95"] is None


def test_rollouts_match_the_evaluation_and_are_kept_as_a_dataset(
    shared_api: Api, trained: dict[str, dict[str, Any]]
) -> None:
    model = trained["dqn"]["model_id"]
    played = post(shared_api, model, "rollouts", {"episodes": 3, "seed": 11})
    assert sum(played["episode_lengths"]) == len(played["actions"]) == len(played["rewards"])
    assert len(played["observations"]) == len(played["actions"]) and played["states"] is None
    evaluated = post(shared_api, model, "evaluate", {"episodes": 3, "seed": 11})
    np.testing.assert_allclose(played["returns"], evaluated["returns"])
    kept = post(
        shared_api,
        model,
        "rollouts",
        {"episodes": 3, "seed": 11, "save_as_dataset": True, "dataset_name": "cp"},
    )
    dataset = kept["dataset"]
    assert dataset["kind"] == "trajectories" and dataset["name"] == "cp" and dataset["created"]
    stored = shared_api.client.get(f"/v1/datasets/{dataset['id']}").json()
    assert stored["rows"] == len(played["actions"])
    again = post(
        shared_api, model, "rollouts", {"episodes": 3, "seed": 11, "save_as_dataset": True}
    )
    assert again["dataset"]["id"] == dataset["id"] and not again["dataset"]["created"]


def test_tabular_and_continuous_rollouts(
    shared_api: Api, trained: dict[str, dict[str, Any]]
) -> None:
    vi = post(
        shared_api,
        trained["value_iteration"]["model_id"],
        "rollouts",
        {"episodes": 4, "seed": 0, "max_steps": 30, "save_as_dataset": True},
    )
    assert vi["observations"] is None and vi["returns"] is None
    assert all(0 <= s < 9 for s in vi["states"]) and max(vi["episode_lengths"]) <= 30
    assert vi["dataset"]["kind"] == "trajectories"
    td3 = post(shared_api, trained["td3"]["model_id"], "rollouts", {"episodes": 1})
    assert td3["episode_lengths"] == [200] and len(td3["actions"][0]) == 1


def cartpole_transitions(n: int = 2_000, seed: int = 0) -> bytes:
    """Uniformly random CartPole-v1 steps as an uploaded `transitions` file."""
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(seed)
    rows: dict[str, list[Any]] = {k: [] for k in ("o", "a", "r", "n", "t")}
    obs, _ = env.reset(seed=seed)
    for _ in range(n):
        action = int(rng.integers(2))
        nxt, reward, terminated, truncated, _ = env.step(action)
        for key, value in zip("oarnt", (obs, action, reward, nxt, terminated), strict=True):
            rows[key].append(value)
        obs = env.reset()[0] if terminated or truncated else nxt
    return npz(
        observations=np.asarray(rows["o"], np.float32),
        actions=np.asarray(rows["a"]),
        rewards=np.asarray(rows["r"], np.float32),
        next_observations=np.asarray(rows["n"], np.float32),
        terminated=np.asarray(rows["t"]),
    )


def test_fitted_q_from_uploaded_transitions_and_from_a_named_model(api: Api) -> None:
    r = upload(api, cartpole_transitions(), kind="transitions")
    assert r.status_code == 201, r.text
    offline = api.train("fqi", {"dataset": r.json()["reference"]})
    q = post(api, offline["model_id"], "q-values", {"observations": CARTPOLE_OBS})
    assert len(q["q_values"]) == 3 and len(q["q_values"][0]) == 2
    api.train("dqn", {}, register_as={"name": "pole", "aliases": ["prod"]})
    behaviour = {"kind": "model", "model": "pole@prod", "epsilon": 0.3}
    collected = api.train("fqi", {"behaviour": behaviour})
    assert collected["config"]["behaviour"]["model"] == "pole@prod"
    judged = api.train("fqe", {"policy": {"kind": "model", "model": "pole@prod"}})
    summary = api.client.get(f"/v1/models/{judged['model_id']}").json()["summary"]
    assert np.isfinite(summary["start_value"]) and summary["policy"]["model"] == "pole@prod"
    body = api.error(
        "POST",
        "/v1/jobs",
        422,
        json={"algorithm": "fqi", "config": {"behaviour": {"kind": "model", "model": "nope@prod"}}},
    )
    assert body["code"] == "model_not_found" and body["field"] == "config.behaviour.model"
    wrong = upload(api, npz(P=FOREST_P, R=FOREST_R), kind="mdp").json()["reference"]
    body = api.error(
        "POST", "/v1/jobs", 422, json={"algorithm": "fqi", "config": {"dataset": wrong}}
    )
    assert body["code"] == "dataset_kind_mismatch"


def test_environments_list_spaces_and_who_accepts_them(api: Api) -> None:
    listed = api.client.get("/v1/environments").json()
    by_name = {env["name"]: env for env in listed["data"]}
    assert listed["count"] == len(by_name)
    pendulum = by_name["Pendulum-v1"]
    assert pendulum["action_space"] == {"type": "box", "shape": [1], "low": [-2.0], "high": [2.0]}
    assert set(pendulum["algorithms"]) == {"td3", "ddpg"} and pendulum["max_episode_steps"] == 200
    assert {"dqn", "fqi", "fqe"} <= set(by_name["CartPole-v1"]["algorithms"])
    assert "fqi" in by_name["CarOnHill-v0"]["algorithms"]
    taxi = by_name["taxi"]
    assert taxi["family"] == "tabular" and taxi["observation_space"]["n"] == 500
    assert taxi["action_space"]["n"] == 6 and "policy_iteration" in taxi["algorithms"]
    assert "maxent_irl" in by_name["grid"]["algorithms"]
    for env in listed["data"]:  # every example is a config its algorithms accept
        for name in env["algorithms"]:
            if env["name"] != "mdp":  # an mdp needs an uploaded dataset
                r = api.client.post(
                    "/v1/jobs", json={"algorithm": name, "config": env["example"], "seed": 0}
                )
                assert r.status_code == 202, (env["name"], name, r.text)
