"""CORS is off by default; with CORS_ORIGINS, pages of those origins (and only those) may
call the API from a browser, preflight included."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import Api, make_api

APP = "http://app.example:3000"


def test_no_cors_headers_by_default(api: Api) -> None:
    r = api.client.get("/v1/algorithms", headers={"origin": APP})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    refused = api.client.post("/v1/jobs", json={}, headers={"origin": APP})
    assert refused.status_code == 403 and refused.json()["code"] == "cross_site_request"


def test_named_origins_may_call_from_a_browser(tmp_path: Path) -> None:
    api = make_api(tmp_path, cors_origins=f"{APP}/, https://other.example")
    preflight = api.client.options(
        "/v1/models/some-model/q-values",
        headers={
            "origin": APP,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == APP
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    # Past the guard: the answer is the API's own (no such model), readable by the page.
    r = api.client.post(
        "/v1/models/some-model/q-values",
        json={"observations": [[0.0]]},
        headers={"origin": APP, "sec-fetch-site": "cross-site"},
    )
    assert r.status_code == 404 and r.headers["access-control-allow-origin"] == APP
    assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
    stranger = api.client.post("/v1/jobs", json={}, headers={"origin": "http://evil.example"})
    assert stranger.status_code == 403
    assert "access-control-allow-origin" not in stranger.headers
