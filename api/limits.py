"""Quota checks the routes make before they queue or store anything (`store.quotas` counts).

The query rate is a token bucket per tenant and API process (`QueryRate`). A tenant past a
quota gets 429 naming the quota, with Retry-After where waiting helps. An
open API's anonymous caller has no quotas: it is the operator, on their own machine.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Annotated

from fastapi import Depends, Request, Security
from sqlalchemy.orm import Session

from api.auth import Caller, Scope, authorize
from api.errors import ApiError
from store import quotas
from store.settings import Settings


def check_submission(session: Session, caller: Caller, settings: Settings) -> None:
    """429 when the tenant may not queue another job (an open API's anonymous caller has no
    quotas: it is the operator on their own machine)."""
    if caller.anonymous:
        return
    try:
        quotas.check_submission(
            session, caller.tenant, quotas.quotas_for(session, caller.tenant, settings)
        )
    except quotas.QuotaExceeded as exc:
        raise quota_error(exc) from None


def check_storage(session: Session, caller: Caller, settings: Settings, *, adding: int) -> None:
    """429 when storing `adding` more bytes would pass the tenant's storage quota."""
    if caller.anonymous:
        return
    try:
        quotas.check_storage(
            session,
            caller.tenant,
            quotas.quotas_for(session, caller.tenant, settings),
            adding=adding,
        )
    except quotas.QuotaExceeded as exc:
        raise quota_error(exc) from None


def quota_error(exc: quotas.QuotaExceeded) -> ApiError:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return ApiError(429, exc.code, exc.message, headers=headers)


class QueryRate:
    """A token bucket per tenant (per process): `queries_per_minute` a minute, in bursts of
    up to a tenth of that. Past it, 429 `rate_limited` with Retry-After."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant: (tokens, at)
        self._lock = threading.Lock()

    def take(self, tenant: str, per_minute: int) -> float:
        """0 if a query may go now, else the seconds until one may."""
        rate = per_minute / 60.0
        capacity = max(1.0, per_minute / 10.0)
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(tenant, (capacity, now))
            tokens = min(capacity, tokens + (now - at) * rate)
            if tokens >= 1.0:
                self._buckets[tenant] = (tokens - 1.0, now)
                return 0.0
            self._buckets[tenant] = (tokens, now)
            return (1.0 - tokens) / rate


async def authorize_query(
    request: Request, caller: Annotated[Caller, Security(authorize, scopes=[Scope.query])]
) -> Caller:
    if caller.queries_per_minute and not caller.anonymous:
        rate: QueryRate = request.app.state.query_rate
        wait = rate.take(caller.tenant, caller.queries_per_minute)
        if wait:
            raise ApiError(
                429,
                "rate_limited",
                f"tenant {caller.tenant!r} is over its {caller.queries_per_minute} queries "
                "a minute; retry after the time Retry-After gives",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
    return caller


QueryCaller = Annotated[Caller, Depends(authorize_query)]
