"""`scripts/run.sh` (what `make run` starts) keeps the embedded service up: a worker killed
with SIGKILL is started again and its job still finishes while the API keeps answering; the
API's death stops everything; SIGTERM stops everything cleanly. Real processes throughout."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import ROOT, migrate
from tests.integration.conftest import FAST_LEASES, STACK_SETTINGS
from tests.integration.stack import FINISHED, free_port

pytestmark = pytest.mark.integration

# Long enough to be killed while it runs (several seconds), checkpointing often.
DQN = {
    "total_steps": 6_000,
    "learning_starts": 500,
    "train_frequency": 4,
    "gradient_steps": 1,
    "eval_interval": 3_000,
    "eval_episodes": 2,
    "checkpoint_interval": 1_000,
}
TINY_VI = {"env": {"kind": "grid", "layout": ["S..", "..G"]}}


def processes() -> dict[int, tuple[int, str, str]]:
    """Every process on this machine: pid -> (parent pid, state, command line)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # it exited meanwhile
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        found[int(entry.name)] = (int(ppid), state, cmdline)
    return found


def alive(pid: int) -> bool:
    info = processes().get(pid)
    return info is not None and info[1] != "Z"


@dataclass
class Service:
    """`scripts/run.sh` on a free port under its own VAR_DIR, output in `run.log`."""

    var_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    @property
    def log(self) -> str:
        return (self.var_dir / "run.log").read_text(errors="replace")

    def start(self) -> Service:
        env = {k: v for k, v in os.environ.items() if k.upper() not in STACK_SETTINGS}
        env |= FAST_LEASES | {"VAR_DIR": str(self.var_dir), "PORT": str(self.port)}
        env["HOST"] = "127.0.0.1"
        migrate(f"sqlite:///{self.var_dir.resolve() / 'crucible.sqlite'}")  # as `make run`
        out = open(self.var_dir / "run.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [str(ROOT / "scripts" / "run.sh")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_until(self.ready, 120, "the API and both workers to be ready")
        return self

    def ready(self) -> bool:
        try:
            answering = self.client.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False
        return answering and self.log.count(" ready.") >= 2 + self.log.count("restarting it")

    def children(self) -> dict[str, int]:
        """The script's processes by role: api, trainer, querier."""
        assert self.proc is not None
        roles = {}
        for pid, (ppid, state, cmdline) in processes().items():
            if ppid != self.proc.pid or state == "Z":
                continue
            if "uvicorn" in cmdline:
                roles["api"] = pid
            elif "--queues=gpu,cpu" in cmdline:
                roles["trainer"] = pid
            elif "--queues=queries" in cmdline:
                roles["querier"] = pid
        return roles

    def submit(self, algorithm: str, config: dict[str, Any]) -> str:
        r = self.client.post("/v1/jobs", json={"algorithm": algorithm, "config": config})
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        r = self.client.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def wait_for(self, job_id: str, check: Any, timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if check(job):
                return job
            time.sleep(0.2)
        raise AssertionError(f"job {job_id}: timed out waiting for {what}: {job}\n{self.log}")

    def wait_until(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            assert self.proc is not None and self.proc.poll() is None, f"run.sh exited\n{self.log}"
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}\n{self.log[-6000:]}")

    def close(self) -> None:
        self.client.close()
        if self.proc is not None and self.proc.poll() is None:  # a failed test: leave nothing
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    service = Service(tmp_path)
    try:
        yield service.start()
    finally:
        service.close()


class Prober(threading.Thread):
    """Asks the API for a job every 0.1 s until stopped; records every answer's status."""

    def __init__(self, service: Service, job_id: str) -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{service.port}/v1/jobs/{job_id}"
        self.answers: list[int | str] = []
        self.done = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.done.wait(0.1):
                try:
                    self.answers.append(client.get(self.url).status_code)
                except httpx.HTTPError as exc:
                    self.answers.append(type(exc).__name__)


def test_a_killed_worker_is_restarted_and_its_job_finishes(service: Service) -> None:
    assert service.proc is not None
    job_id = service.submit("dqn", DQN)
    running = service.wait_for(
        job_id, lambda j: (j["checkpoint_step"] or 0) >= 1_000, 120, "a checkpoint"
    )
    assert running["status"] == "running" and running["attempt"] == 1
    before = service.children()
    prober = Prober(service, job_id)
    prober.start()

    os.kill(before["trainer"], signal.SIGKILL)
    service.wait_until(lambda: "restarting it" in service.log, 30, "the restart")
    [line] = [line for line in service.log.splitlines() if "restarting it" in line]
    assert f"training worker (pid {before['trainer']}) exited with status 137" in line
    # A job submitted while the worker restarts runs too.
    tiny = service.submit("value_iteration", TINY_VI)
    done = service.wait_for(job_id, lambda j: j["status"] in FINISHED, 180, "the end")
    prober.done.set()
    prober.join()

    assert done["status"] == "succeeded" and done["attempt"] == 2, done
    assert done["resumed_from_step"] >= 1_000
    # The restarted worker runs the two in either order.
    finished = service.wait_for(tiny, lambda j: j["status"] in FINISHED, 60, "the tiny job")
    assert finished["status"] == "succeeded", finished
    after = service.children()
    assert after["api"] == before["api"] and after["querier"] == before["querier"]
    assert after["trainer"] != before["trainer"]
    assert prober.answers and set(prober.answers) == {200}  # the API never stopped answering
    assert service.log.count("restarting it") == 1

    service.proc.send_signal(signal.SIGTERM)
    assert service.proc.wait(timeout=60) == 0
    assert not [role for role, pid in after.items() if alive(pid)]


def test_the_api_exiting_stops_everything(service: Service) -> None:
    assert service.proc is not None
    before = service.children()
    assert set(before) == {"api", "trainer", "querier"}
    os.kill(before["api"], signal.SIGKILL)
    assert service.proc.wait(timeout=60) == 1
    assert "the API exited (status 137); stopping the workers" in service.log
    assert "restarting it" not in service.log
    assert not [role for role, pid in before.items() if alive(pid)]
