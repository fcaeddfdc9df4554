"""Private Redis and PostgreSQL servers for fault tests, on free loopback ports.

Fault tests stop, restart and cut these servers while a stack runs on them; the shared servers
on the default ports (which other test runs and other people use) are never touched. Redis
runs without persistence, so a restart loses every message, as a production Redis configured
without persistence does. PostgreSQL is a cluster of its own (`pg_createcluster`, run by the
`postgres` user as Debian's tools do, since `initdb` refuses root), dropped afterwards.

Without the server binaries the tests are skipped locally and fail in CI (`tests.conftest`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_binaries(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        message = f"{', '.join(missing)} not installed"
        if IN_CI:
            pytest.fail(message + " (CI=true: services are required)")
        pytest.skip(message)


def wait_for_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:g} s")


class RedisServer:
    """`redis-server` on a free port, in the foreground, with no persistence at all."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - the server keeps it
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--loglevel",
                "warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_for_port(self.port, 10, "redis-server")

    def stop(self) -> None:
        """Shut it down; every message it held is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def private_redis(directory: Path) -> Iterator[RedisServer]:
    require_binaries("redis-server")
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _postgres_version() -> str:
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: [int(n) for n in p.parts[-3].split(".") if n.isdigit()],
    )
    if not versions:
        pytest.skip("no PostgreSQL server installed under /usr/lib/postgresql")
    return versions[-1].parts[-3]


class PostgresCluster:
    """A PostgreSQL cluster of its own (Debian's `pg_createcluster`) on a free port, trusting
    local connections, tuned for tests (no fsync); `stop` and `start` cut and restore it."""

    def __init__(self) -> None:
        self.version = _postgres_version()
        self.name = f"crucible_{uuid.uuid4().hex[:10]}"
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stdout}{done.stderr}")

    def create(self) -> None:
        options = [
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "shared_buffers=16MB",
        ]
        self._run(
            "pg_createcluster",
            self.version,
            self.name,
            "--port",
            str(self.port),
            "--start-conf=manual",
            *[arg for option in options for arg in ("-o", option)],
            "--",
            "--auth=trust",
        )

    def start(self) -> None:
        self._run("pg_ctlcluster", self.version, self.name, "start")
        wait_for_port(self.port, 30, "PostgreSQL")

    def stop(self) -> None:
        """A fast shutdown: open connections are cut, new ones refused."""
        self._run("pg_ctlcluster", self.version, self.name, "stop", "-m", "fast")

    def restart(self) -> None:
        self.stop()
        self.start()

    def drop(self) -> None:
        self._run("pg_dropcluster", "--stop", self.version, self.name)


@contextmanager
def private_postgres() -> Iterator[PostgresCluster]:
    require_binaries("pg_createcluster", "pg_ctlcluster", "pg_dropcluster")
    if not os.access("/etc/postgresql", os.W_OK):  # where pg_createcluster writes its config
        message = "creating a PostgreSQL cluster needs root (or write access to /etc/postgresql)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    cluster = PostgresCluster()
    cluster.create()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.drop()
