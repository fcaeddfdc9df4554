"""The interactive API documentation, `/docs` (Swagger UI) and `/redoc` (ReDoc), served with
their scripts and styles from this API itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a machine without internet
they are blank (fastapi#4924, mlflow#1886). The files come from the `fastapi-offline` wheel
(MIT), installed with the service: nothing is fetched at run time, and Swagger UI's
validator badge (a request to validator.swagger.io) and ReDoc's Google fonts are turned off.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"


def assets_directory() -> str:
    """Where the installed wheel keeps swagger-ui-bundle.js, swagger-ui.css,
    redoc.standalone.js and favicon.png."""
    return str(files("fastapi_offline") / "static")


def install(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets (outside the OpenAPI document); the app is
    created with FastAPI's own pages turned off."""
    app.mount(ASSETS, StaticFiles(directory=assets_directory()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
