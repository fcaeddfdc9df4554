"""Crucible's Python client: `Client` (blocking) and `AsyncClient`, typed answers and typed
errors, and the `crucible` command line (`crucible_client.cli`). It needs httpx, pydantic,
typer and rich only: no torch, and nothing of the server.

    from crucible_client import Client

    with Client("http://127.0.0.1:8000") as crucible:
        job = crucible.submit("dqn", {"env": "CartPole-v1"}, seed=1)
        job = crucible.wait(job.id, progress=True)
        crucible.query(job.model_id, "q-values", {"observations": [[0, 0, 0, 0]]})
"""

from crucible_client.aio import AsyncClient
from crucible_client.client import Client
from crucible_client.errors import (
    AuthenticationError,
    BadRequest,
    Conflict,
    CrucibleConnectionError,
    CrucibleError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerUnavailable,
    ValidationError,
)
from crucible_client.events import (
    EndEvent,
    JobEvent,
    MetricsEvent,
    OtherEvent,
    ProgressEvent,
    StatusEvent,
    WarningEvent,
)
from crucible_client.schemas import (
    Algorithm,
    Dataset,
    Job,
    JobStatus,
    Key,
    KeyCreated,
    LogRecord,
    Metrics,
    Page,
    TrainedModel,
)

__all__ = [
    "Algorithm",
    "AsyncClient",
    "AuthenticationError",
    "BadRequest",
    "Client",
    "Conflict",
    "CrucibleConnectionError",
    "CrucibleError",
    "Dataset",
    "EndEvent",
    "Job",
    "JobEvent",
    "JobStatus",
    "Key",
    "KeyCreated",
    "LogRecord",
    "Metrics",
    "MetricsEvent",
    "NotFound",
    "OtherEvent",
    "Page",
    "PermissionDenied",
    "ProgressEvent",
    "RateLimited",
    "ServerUnavailable",
    "StatusEvent",
    "TrainedModel",
    "ValidationError",
    "WarningEvent",
]
