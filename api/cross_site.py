"""Nothing that changes state can be triggered by a page of another site.

A browser attaches no API key on its own, but an API that runs open (AUTH_REQUIRED=false)
needs none, and a cross-site "simple" request (a form post, a `text/plain` fetch) reaches the
server without a preflight. Browsers say where such a request comes from (`Origin` on every
cross-origin POST, and `Sec-Fetch-Site`); a state-changing request whose origin is not the
API's own is refused with 403 `cross_site_request`. Programs (curl, the SDK) send neither
header and are not affected; the API sends no CORS headers, so scripts of other sites cannot
read its answers either, unless the deployment names their origins (`CORS_ORIGINS`): pages
of those origins get CORS headers and may send state-changing requests (a query's POST),
with the API key their code attaches, since the browser attaches none by itself.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_body

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def same_origin(origin: str, host: str | None) -> bool:
    if origin == "null" or host is None:
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


class CrossSiteGuard:
    def __init__(self, app: ASGIApp, allowed: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.allowed = allowed  # origins whose pages may call (CORS_ORIGINS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            origin = headers.get("origin")
            cross = origin not in self.allowed and (
                headers.get("sec-fetch-site") == "cross-site"
                or (origin is not None and not same_origin(origin, headers.get("host")))
            )
            if cross:
                response = JSONResponse(
                    error_body(
                        "cross_site_request",
                        "a request that changes state may not come from another site's page",
                    ),
                    status_code=403,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
