"""Who is calling: API keys, tenants and scopes.

Every route depends on `authorize` with the scope it needs (`read`, `train`, `query`,
`admin`), through the `*Caller` types below, and works on the `Caller`'s tenant only. Without
a key: 401 when AUTH_REQUIRED is on; when it is off (the embedded `make run` on loopback) the
caller is the `default` tenant with every scope but `admin`, and no quotas or rate limits.
A key sent to an open API is still checked, so tenants work the same in both modes.

Keys are looked up once per `KEY_CACHE_SECONDS` per process (a revoked key stops working
within that time on every process, at once on the one that revoked it), and their
`last_used_at` is written at most once a minute. Quotas and the query rate are in
`api.limits`.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from starlette.concurrency import run_in_threadpool

from api.deps import current_settings
from api.errors import ApiError
from store import keys, quotas
from store.db import session_factory, session_scope
from store.keys import ADMIN_KEY_ID, ALL_SCOPES, Scope
from store.settings import Settings
from store.tables import DEFAULT_TENANT, utcnow

KEY_CACHE_SECONDS = 5.0
LAST_USED_RESOLUTION = timedelta(seconds=60)
ADMIN_TENANT = "admin"


@dataclass(frozen=True)
class Caller:
    tenant: str
    key_id: str | None  # None: nobody in particular, on an open API
    scopes: frozenset[str]
    queries_per_minute: int = 0  # 0: no limit

    @property
    def anonymous(self) -> bool:
        return self.key_id is None


OPEN_CALLER = Caller(DEFAULT_TENANT, None, ALL_SCOPES - {Scope.admin})

bearer = HTTPBearer(
    auto_error=False,
    description="An API key: `Authorization: Bearer crk_...`. Required unless the deployment "
    "runs open (AUTH_REQUIRED=false).",
)


class KeyCache:
    """Callers by key hash (refused keys by their reason), each for `ttl` seconds."""

    def __init__(self, ttl: float = KEY_CACHE_SECONDS, size: int = 4096) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: OrderedDict[str, tuple[float, Caller | str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> Caller | str | None:
        """The cached caller, or the cached reason a key is refused, or None (look it up)."""
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None or entry[0] < time.monotonic():
                return None
            return entry[1]

    def put(self, digest: str, value: Caller | str) -> None:
        with self._lock:
            self._entries[digest] = (time.monotonic() + self._ttl, value)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def forget_key(self, key_id: str) -> None:
        with self._lock:
            for digest, (_, value) in list(self._entries.items()):
                if isinstance(value, Caller) and value.key_id == key_id:
                    del self._entries[digest]


def unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


def _look_up(settings: Settings, key: str) -> Caller | str:
    """The key's caller, or why it is refused ("unknown", "revoked", "expired")."""
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        row = keys.find_key(session, key)
        if row is None:
            return "unknown"
        refusal = keys.refusal(row)
        if refusal is not None:
            return refusal
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
            row.last_used_at = now
        rate = quotas.quotas_for(session, row.tenant, settings).queries_per_minute
        return Caller(row.tenant, row.id, frozenset(row.scopes), queries_per_minute=rate)


REFUSALS = {
    "unknown": ("invalid_api_key", "the API key is not valid"),
    "revoked": ("api_key_revoked", "the API key was revoked"),
    "expired": ("api_key_expired", "the API key has expired"),
}


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    settings = await current_settings(request)
    if credentials is None:
        if request.headers.get("authorization"):
            raise unauthorized("invalid_api_key", "the Authorization header must be 'Bearer <key>'")
        if settings.auth_required:
            raise unauthorized(
                "api_key_required", "this API needs a key: Authorization: Bearer <key>"
            )
        return OPEN_CALLER
    key = credentials.credentials
    admin = settings.admin_api_key
    if admin is not None and hmac.compare_digest(key.encode(), admin.encode()):
        return Caller(ADMIN_TENANT, ADMIN_KEY_ID, ALL_SCOPES)
    cache: KeyCache = request.app.state.key_cache
    digest = keys.hash_key(key)
    found = cache.get(digest)
    if found is None:
        found = await run_in_threadpool(_look_up, settings, key)
        cache.put(digest, found)
    if isinstance(found, str):
        raise unauthorized(*REFUSALS[found])
    return found


async def authorize(
    security: SecurityScopes, caller: Annotated[Caller, Depends(authenticate)]
) -> Caller:
    missing = [scope for scope in security.scopes if scope not in caller.scopes]
    if missing:
        raise ApiError(
            403,
            "missing_scope",
            f"this key lacks the {', '.join(missing)} scope{'s' if len(missing) > 1 else ''} "
            "this operation needs",
        )
    return caller


AnyCaller = Annotated[Caller, Security(authorize, scopes=[])]
ReadCaller = Annotated[Caller, Security(authorize, scopes=[Scope.read])]
TrainCaller = Annotated[Caller, Security(authorize, scopes=[Scope.train])]
AdminCaller = Annotated[Caller, Security(authorize, scopes=[Scope.admin])]
