"""The stacks integration tests run against: embedded (SQLite + kombu's SQLAlchemy transport)
and production-like (PostgreSQL + Redis)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.stack import Stack

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


def _env(var_dir: Path, database_url: str, broker_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL")}
    env |= FAST_LEASES | {"VAR_DIR": str(var_dir)}
    if database_url:
        env["DATABASE_URL"] = database_url
    if broker_url:
        env["BROKER_URL"] = broker_url
    return env


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
    stack = Stack(request.param.replace("+", "-"), var_dir, env, database_url)
    try:
        yield stack.start()
    finally:
        stack.stop()
