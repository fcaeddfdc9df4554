"""`GET /metrics`: jobs by status and algorithm, queue depths, recent durations, the model
cache and each query's latency and errors, in Prometheus's text format; the admin's when
keys are required."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import Api, make_api


def scrape(api: Api, **kwargs: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = api.client.get("/metrics", **kwargs)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
    }


def test_jobs_queues_durations_cache_and_queries(api: Api) -> None:
    done = api.train("value_iteration")
    api.submit("value_iteration")  # stays queued: no worker here
    url = f"/v1/models/{done['model_id']}/q-values"
    before = scrape(api)
    for _ in range(2):
        assert api.client.post(url, json={"states": [0]}).status_code == 200
    api.error("POST", url, 422, json={"states": [10_000]})
    found = scrape(api)
    vi = ("algorithm", "value_iteration")
    assert found[("crucible_jobs", (vi, ("status", "succeeded")))] == 1
    assert found[("crucible_jobs", (vi, ("status", "queued")))] == 1
    assert found[("crucible_queue_depth", (("queue", "cpu"),))] == 1
    assert found[("crucible_job_duration_seconds_count", (vi,))] == 1
    assert found[("crucible_job_duration_seconds_bucket", (vi, ("le", "+Inf")))] == 1
    assert found[("crucible_workers_busy", ())] == 0

    def delta(name: str, *labels: tuple[str, str]) -> float:
        key = (name, tuple(sorted(labels)))
        return found.get(key, 0.0) - before.get(key, 0.0)

    q = ("query", "q-values")
    assert delta("crucible_query_seconds_count", q, ("outcome", "ok")) == 2
    assert delta("crucible_query_seconds_count", q, ("outcome", "error")) == 1
    assert delta("crucible_query_errors_total", q, ("code", "invalid_query")) == 1
    assert found[("crucible_model_cache_loads_total", ())] >= 1
    assert delta("crucible_model_cache_hits_total") >= 1


def test_the_admin_scrapes_when_keys_are_required(tmp_path: Path) -> None:
    admin = "a" * 24
    api = make_api(tmp_path, auth_required=True, admin_api_key=admin)
    assert api.error("GET", "/metrics", 401)["code"]
    created = api.client.post(
        "/v1/keys",
        json={"tenant": "team-a", "scopes": ["read", "train"]},
        headers={"authorization": f"Bearer {admin}"},
    )
    assert created.status_code == 201, created.text
    reader = {"authorization": f"Bearer {created.json()['key']}"}
    assert api.error("GET", "/metrics", 403, headers=reader)["code"] == "missing_scope"
    scrape(api, headers={"authorization": f"Bearer {admin}"})
