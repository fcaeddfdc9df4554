"""A job's webhook: what is sent, how it is signed, and the state of its delivery.

When a job with a webhook ends, the transition that ends it marks the webhook `pending` and
due (`store.jobs`). A worker calls it (`worker.webhooks`): at once for a job it finished,
and from its sweeper for every other due one (a job cancelled while queued, a failed try).
A call is taken by a conditional UPDATE that moves `webhook_next_at` past the call's time
limit, so two sweepers never call at once; a try that fails is retried with exponential
back-off (5 s, 10 s, 20 s, ... capped at 10 minutes) until `WEBHOOK_MAX_ATTEMPTS`.

The signature follows the scheme Stripe and GitHub made familiar: header
`Crucible-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, the time inside the
signed text so a receiver can refuse old replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from store.tables import Job, TrainedModelRow, utcnow

EVENT = "job.finished"
FIRST_BACKOFF_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 600.0
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def signature(secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, now: float, tolerance: float = 300) -> bool:
    """What a receiver does (and the tests): the signature matches and is recent."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = signature(secret, body, timestamp)
    return hmac.compare_digest(expected, header) and abs(now - timestamp) <= tolerance


def payload(session: Session, job: Job) -> bytes:
    """The body of the call: the job's outcome, what a receiver acts on."""
    model_id = session.scalar(select(TrainedModelRow.id).where(TrainedModelRow.job_id == job.id))
    links = {"self": f"/v1/jobs/{job.id}"}
    if model_id is not None:
        links["model"] = f"/v1/models/{model_id}"
    body = {
        "event": EVENT,
        "job": {
            "id": job.id,
            "name": job.name,
            "algorithm": job.algorithm,
            "status": job.status,
            "error": job.error,
            "error_code": job.error_code,
            "tags": job.tags,
            "seed": job.seed,
            "model_id": model_id,
            "created_at": job.created_at.isoformat(),
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            "links": links,
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Call:
    """A webhook call taken by this worker: where, signed with what, and which try."""

    job_id: str
    url: str
    secret: str
    attempt: int
    body: bytes


def due(session: Session, *, now: datetime | None = None, limit: int = 20) -> Sequence[str]:
    """Ids of jobs whose webhook is due."""
    now = now or utcnow()
    return session.scalars(
        select(Job.id)
        .where(Job.webhook_status == PENDING, Job.webhook_next_at <= now)
        .order_by(Job.webhook_next_at)
        .limit(limit)
    ).all()


def take(session: Session, job_id: str, *, hold_seconds: float) -> Call | None:
    """Take the job's due call for `hold_seconds` (nobody else calls meanwhile), or None if
    it is not due or another worker took it."""
    now = utcnow()
    job = session.get(Job, job_id)
    if job is None or job.webhook is None or job.webhook_status != PENDING:
        return None
    if job.webhook_next_at is None or job.webhook_next_at > now:
        return None
    attempt, url, secret = job.webhook_attempts + 1, job.webhook["url"], job.webhook["secret"]
    taken = cast(
        CursorResult[Any],
        session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.webhook_status == PENDING,
                Job.webhook_next_at == job.webhook_next_at,
            )
            .values(
                webhook_next_at=now + timedelta(seconds=hold_seconds),
                webhook_attempts=Job.webhook_attempts + 1,
            )
        ),
    ).rowcount
    if not taken:
        return None
    return Call(job_id, url, secret, attempt, payload(session, job))


def backoff(attempt: int) -> float:
    """Seconds before the try after try `attempt` (1-based)."""
    return min(FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)


def record(session: Session, call: Call, *, error: str | None, max_attempts: int) -> str:
    """Record a try's outcome; the webhook's new status."""
    if error is None:
        status, next_at = DELIVERED, None
    elif call.attempt >= max_attempts:
        status, next_at = FAILED, None
    else:
        status, next_at = PENDING, utcnow() + timedelta(seconds=backoff(call.attempt))
    session.execute(
        update(Job)
        .where(Job.id == call.job_id)
        .values(
            webhook_status=status,
            webhook_next_at=next_at,
            webhook_last_error=None if error is None else error[:500],
        )
    )
    return status
