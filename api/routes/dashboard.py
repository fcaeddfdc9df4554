"""The dashboard: a single page served by the API itself at `/`, its files under
`/dashboard/...` (`api/dashboard/`), so there is no second server to run or secure.

The page holds no data (every number it shows comes from `/v1/...` with the key the user
typed), so these routes need no key and stay out of the OpenAPI document. They answer with a
strict Content-Security-Policy: only this origin's scripts, styles and API, no inline script,
no framing, images from `blob:` (query figures fetched with the key and shown through object
URLs). Files are read once, at import; `Cache-Control: no-cache` with an ETag lets browsers
keep them and ask cheaply whether they changed, so a new release shows at the next load.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib.resources import files

from fastapi import APIRouter, Request, Response

from api.errors import ApiError

router = APIRouter(include_in_schema=False)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# A file name as the page links it: no folders, no dots but the extension's.
ASSET_NAME = re.compile(r"^[a-z0-9_-]{1,64}\.(?:js|css|svg)$")


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """Every servable file of `api/dashboard/`, by name; anything else is never served."""
    found = {}
    for entry in files("api.dashboard").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if suffix in MEDIA_TYPES and entry.is_file():
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            found[entry.name] = Asset(body, MEDIA_TYPES[suffix], etag)
    return found


ASSETS = load_assets()
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


def serve(asset: Asset, request: Request) -> Response:
    """The file, or 304 when the browser's copy is current."""
    headers = {**HEADERS, "ETag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/")
def dashboard(request: Request) -> Response:
    """The page; the hash routes (#/jobs, #/models/ID...) are the browser's business."""
    return serve(ASSETS["index.html"], request)


@router.get("/dashboard/{name}")
def dashboard_asset(name: str, request: Request) -> Response:
    """A file of `api/dashboard/` by its bare name; anything else is the API's JSON 404, so
    no path can reach outside the folder."""
    asset = ASSETS.get(name) if ASSET_NAME.match(name) else None
    if asset is None:
        raise ApiError(404, "not_found", "no such dashboard file", field="name")
    return serve(asset, request)
