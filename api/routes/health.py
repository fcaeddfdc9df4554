"""Liveness and readiness probes (docker-compose health checks use /readyz)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import SessionDep
from api.errors import ApiError

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(session: SessionDep) -> dict[str, str]:
    try:
        session.execute(text("SELECT 1 FROM jobs LIMIT 1"))
    except Exception as exc:
        raise ApiError(503, "not_ready", f"database not ready: {type(exc).__name__}") from exc
    return {"status": "ready"}
