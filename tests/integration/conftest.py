"""The stacks integration tests run against: embedded (SQLite + kombu's SQLAlchemy transport,
artifacts in a local folder) and production-like (PostgreSQL + Redis, artifacts in S3)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.artifacts import create_bucket_if_missing
from tests.integration.stack import Stack
from tests.s3server import S3Server

# Short leases so a killed worker's job is noticed within seconds, not a minute.
FAST_LEASES = {
    "LEASE_SECONDS": "3",
    "HEARTBEAT_SECONDS": "0.5",
    "SWEEP_SECONDS": "1",
    "METRICS_FLUSH_SECONDS": "0.5",
    "DEVICE": "cpu",
    "LOG_LEVEL": "INFO",
    "OMP_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
}


# Settings the stacks set themselves: never inherited from the shell that runs the tests.
STACK_SETTINGS = (
    "DATABASE_URL",
    "BROKER_URL",
    "BROKER_KEY_PREFIX",
    "ARTIFACT_URL",
    "ARTIFACT_DIR",
    "S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
)


def _env(var_dir: Path, database_url: str, broker_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in STACK_SETTINGS}
    env |= FAST_LEASES | {"VAR_DIR": str(var_dir)}
    if database_url:
        env["DATABASE_URL"] = database_url
    if broker_url:
        env["BROKER_URL"] = broker_url
    return env


def _s3_env(server: S3Server) -> dict[str, str]:
    """Artifacts in the test S3 server's bucket, under a prefix of this stack's own."""
    url = f"s3://crucible-integration/{uuid.uuid4().hex[:12]}"
    create_bucket_if_missing(server.settings(url))
    return server.env(url)


@pytest.fixture(scope="session", params=["embedded", "postgres+redis"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    var_dir = tmp_path_factory.mktemp(request.param.replace("+", "-"))
    if request.param == "embedded":  # nothing set: the defaults under VAR_DIR
        env = _env(var_dir, "", "")
        database_url = f"sqlite:///{var_dir.resolve() / 'crucible.sqlite'}"
    else:
        database_url = request.getfixturevalue("postgres_url")
        env = _env(var_dir, database_url, request.getfixturevalue("redis_url"))
        env["BROKER_KEY_PREFIX"] = request.getfixturevalue("redis_key_prefix")
        env |= _s3_env(request.getfixturevalue("s3_server"))
    stack = Stack(request.param.replace("+", "-"), var_dir, env, database_url)
    try:
        yield stack.start()
    finally:
        stack.stop()
