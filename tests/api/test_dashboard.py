"""The dashboard is served by the API itself, with no key, under a strict
Content-Security-Policy, and links nothing outside the API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.routes.dashboard import ASSETS
from tests.api.conftest import Api, make_api


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Api:
    """Keys required: the page and its files must still load (they hold no data)."""
    return make_api(
        tmp_path_factory.mktemp("dashboard"), auth_required=True, admin_api_key="admin-0123456789"
    )


def test_the_page_is_html_with_a_strict_policy(secured: Api) -> None:
    r = secured.client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    policy = r.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-cache" and r.headers["etag"]
    assert '<script type="module" src="/dashboard/app.js">' in r.text
    assert "<script>" not in r.text and " style=" not in r.text  # nothing inline: the CSP


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
def test_assets_are_served_with_their_media_types(secured: Api, name: str, media_type: str) -> None:
    r = secured.client.get(f"/dashboard/{name}")
    assert r.status_code == 200 and r.headers["content-type"] == media_type
    assert "default-src 'self'" in r.headers["content-security-policy"]
    again = secured.client.get(f"/dashboard/{name}", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and not again.content


def test_every_file_the_page_loads_is_served_and_local(secured: Api) -> None:
    """Every module an import names, every file index.html links: served here, nothing from
    a CDN (the page works offline)."""
    linked = set(re.findall(r'(?:src|href)="(/[^"]+)"', secured.client.get("/").text))
    for name, asset in ASSETS.items():
        if name.endswith(".js"):
            imports = re.findall(r'from "\./([^"]+)"', asset.body.decode())
            linked |= {f"/dashboard/{module}" for module in imports}
        assert b"http://" not in asset.body.replace(b"http://www.w3.org/2000/svg", b"")
        assert b"https://" not in asset.body
    assert {"/dashboard/app.js", "/dashboard/style.css", "/dashboard/jobs.js"} <= linked
    for url in linked - {"/docs"}:
        assert secured.client.get(url).status_code == 200, url


def test_no_script_builds_html_from_strings() -> None:
    """Names and tags come from users: the scripts build the DOM with textContent."""
    for name, asset in ASSETS.items():
        if name.endswith(".js"):
            text = asset.body.decode()
            for sink in (
                ".innerHTML",
                ".outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ):
                assert sink not in text, (name, sink)


@pytest.mark.parametrize(
    "url", ["/dashboard/missing.js", "/dashboard/__init__.py", "/dashboard/..%2Fmain.py"]
)
def test_a_missing_asset_is_a_json_404(secured: Api, url: str) -> None:
    r = secured.client.get(url)
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    assert r.json()["code"] == "not_found" and r.json()["request_id"]


def test_the_dashboard_is_not_in_the_openapi_document(secured: Api) -> None:
    paths = secured.client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not [p for p in paths if p.startswith("/dashboard")]


def test_the_data_still_needs_a_key(secured: Api) -> None:
    assert secured.client.get("/v1/jobs").status_code == 401


def test_the_open_api_serves_it_too(tmp_path: Path) -> None:
    assert make_api(tmp_path).client.get("/").status_code == 200
