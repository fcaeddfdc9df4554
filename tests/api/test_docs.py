"""/docs and /redoc work with no internet: every script, style and icon they load is served
by the API itself."""

from __future__ import annotations

import re

from tests.api.conftest import Api


def linked(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)


def test_swagger_ui_and_redoc_load_only_from_the_api(api: Api) -> None:
    for page, script in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        r = api.client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "cdn" not in r.text and "googleapis" not in r.text
        urls = linked(r.text)
        assert f"/docs-assets/{script}" in urls
        assert urls and all(url.startswith("/") for url in urls), urls
        for url in urls:
            asset = api.client.get(url)
            assert asset.status_code == 200, url
        assert len(api.client.get(f"/docs-assets/{script}").content) > 500_000
    assert "validatorUrl" in api.client.get("/docs").text  # no badge fetched from outside
    assert "/docs" not in api.client.get("/openapi.json").json()["paths"]
