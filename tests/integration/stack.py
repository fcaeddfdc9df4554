"""A real Crucible stack for integration tests: uvicorn and a Celery worker as separate
processes, against a real database and broker. Nothing is mocked."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from store.artifacts import ArtifactStore, open_artifact_store
from store.settings import Settings
from tests.helpers import ROOT, migrate

BIN = Path(sys.executable).parent
FINISHED = {"succeeded", "failed", "cancelled"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    name: str
    var_dir: Path
    env: dict[str, str]
    database_url: str
    port: int = field(default_factory=free_port)
    api: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    # -- processes -----------------------------------------------------------------------
    def _spawn(self, args: list[str], log: str) -> subprocess.Popen[bytes]:
        out = open(self.var_dir / log, "ab")  # noqa: SIM115 - lives as long as the process
        return subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start(self) -> Stack:
        migrate(self.database_url)
        self.api = self._spawn(
            [
                str(BIN / "uvicorn"),
                "api.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            "api.log",
        )
        self.start_worker()
        self.wait_until(lambda: self._ready(), 60, "the API to answer /readyz")
        return self

    def start_worker(self) -> subprocess.Popen[bytes]:
        n = len(self.workers)
        log = f"worker{n}.log"
        proc = self._spawn(
            [
                str(BIN / "celery"),
                "-A",
                "worker.app",
                "worker",
                "--pool=solo",
                "--queues=gpu,cpu,queries",
                "--loglevel=INFO",
                f"--hostname=w{n}-{self.name}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            log,
        )
        self.workers.append(proc)
        self.wait_until(
            lambda: b"ready." in (self.var_dir / log).read_bytes(), 90, "the worker to be ready"
        )
        return proc

    def worker_running(self, job: dict[str, Any]) -> subprocess.Popen[bytes]:
        """The worker process holding a job's lease (job["worker"] is "host:pid")."""
        pid = int(str(job["worker"]).rsplit(":", 1)[1])
        return next(p for p in self.workers if p.pid == pid)

    def alive_workers(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.workers if p.poll() is None]

    def kill_worker(self, proc: subprocess.Popen[bytes]) -> None:
        """kill -9: no shutdown handler runs, the lease is simply left to expire."""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def pause_worker(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGSTOP: the worker freezes mid-step (a long GC pause, a stalled VM) and its
        lease expires while it still thinks it holds the job."""
        os.kill(proc.pid, signal.SIGSTOP)

    def resume_worker(self, proc: subprocess.Popen[bytes]) -> None:
        os.kill(proc.pid, signal.SIGCONT)

    def worker_log(self, proc: subprocess.Popen[bytes]) -> Path:
        return self.var_dir / f"worker{self.workers.index(proc)}.log"

    def wait_for_log(
        self, text: str, timeout: float = 30, proc: subprocess.Popen[bytes] | None = None
    ) -> None:
        """Wait until a worker's log (`proc`'s, or any) has a line containing `text`."""
        line = text.encode()

        def logged() -> bool:
            logs = [self.worker_log(proc)] if proc else self.var_dir.glob("worker*.log")
            return any(line in log.read_bytes() for log in logs)

        self.wait_until(logged, timeout, f"a worker to log {text!r}")

    def stop(self) -> None:
        self.client.close()
        for proc in [*self.workers, self.api]:
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)  # a paused worker would ignore SIGTERM
                proc.terminate()
        for proc in [*self.workers, self.api]:
            if proc is None:
                continue
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    def _ready(self) -> bool:
        try:
            return self.client.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def artifacts(self) -> ArtifactStore:
        """The artifact store the stack's processes use (a folder or an S3 bucket)."""
        env = {k.lower(): v for k, v in self.env.items()}
        return open_artifact_store(Settings.model_validate(env))

    def wait_for_skip(self, job_id: str, reason: str, timeout: float = 30) -> None:
        """Wait until a worker took a message for `job_id` and left it (`worker.runner`
        logs "job <id> not run: <reason>"): the event a duplicate message leads to."""
        line = f"job {job_id} not run: {reason}".encode()

        def skipped() -> bool:
            return any(line in log.read_bytes() for log in self.var_dir.glob("worker*.log"))

        self.wait_until(skipped, timeout, f"a worker to skip job {job_id} ({reason})")

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.var_dir.glob("*.log"))
        )

    # -- API helpers ---------------------------------------------------------------------
    def submit(self, algorithm: str, config: dict[str, Any], **extra: Any) -> dict[str, Any]:
        r = self.client.post("/v1/jobs", json={"algorithm": algorithm, "config": config, **extra})
        assert r.status_code == 202, r.text
        assert r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
        return dict(r.json())

    def job(self, job_id: str) -> dict[str, Any]:
        r = self.client.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def wait_for(
        self,
        job_id: str,
        statuses: Iterable[str] = FINISHED,
        timeout: float = 120,
        check: Any = None,
    ) -> dict[str, Any]:
        wanted = set(statuses)
        deadline = time.monotonic() + timeout
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["status"] in wanted and (check is None or check(job)):
                return job
            if job["status"] in FINISHED and job["status"] not in wanted:
                break
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} did not reach {wanted}: {job}\n{self.logs()}")

    def run(self, algorithm: str, config: dict[str, Any], **extra: Any) -> dict[str, Any]:
        job = self.submit(algorithm, config, **extra)
        done = self.wait_for(job["id"])
        assert done["status"] == "succeeded", f"{done}\n{self.logs()}"
        return done

    @staticmethod
    def wait_until(predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")
