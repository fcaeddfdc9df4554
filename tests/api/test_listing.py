"""Lists say when a query parameter is unknown (a misspelt filter must not list everything),
filter jobs by name and tags, and sort."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api

LISTS = ("/v1/jobs", "/v1/models", "/v1/datasets", "/v1/registry", "/v1/algorithms",
         "/v1/environments")  # fmt: skip


@pytest.mark.parametrize("url", LISTS)
def test_an_unknown_query_parameter_is_named(api: Api, url: str) -> None:
    body = api.error("GET", url, 422, params={"stauts": "failed"})
    assert body["code"] == "unknown_parameter" and body["field"] == "stauts"
    assert api.client.get(url).status_code == 200


def test_jobs_filter_by_name_and_tags_and_sort(api: Api) -> None:
    config: dict[str, object] = {}
    a = api.submit("value_iteration", config, name="alpha", tags={"team": "rl", "run": "1"})
    b = api.submit("value_iteration", config, name="beta", tags={"team": "rl"})
    c = api.submit("value_iteration", config, name="alpha", tags={"team": "gan"})

    def ids(**params: object) -> list[str]:
        r = api.client.get("/v1/jobs", params=params)
        assert r.status_code == 200, r.text
        return [job["id"] for job in r.json()["data"]]

    assert ids(name="alpha") == [c["id"], a["id"]]  # newest first
    assert ids(tag="team=rl") == [b["id"], a["id"]]
    assert ids(tag=["team=rl", "run"]) == [a["id"]]
    assert ids(tag="run=2") == []
    assert ids(sort="created_at") == [a["id"], b["id"], c["id"]]
    assert ids(sort="-name")[0] == b["id"]
    assert api.client.get("/v1/jobs", params={"name": "alpha"}).json()["count"] == 2
    assert api.error("GET", "/v1/jobs", 422, params={"sort": "size"})["field"] == "sort"
    assert api.error("GET", "/v1/jobs", 422, params={"tag": "=x"})["field"] == "tag"


def test_models_sort(api: Api) -> None:
    first = api.train("value_iteration")
    second = api.train("policy_iteration")
    listed = api.client.get("/v1/models", params={"sort": "algorithm"}).json()["data"]
    assert [m["id"] for m in listed] == [second["model_id"], first["model_id"]]
