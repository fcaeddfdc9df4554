"""The OpenAPI document is good enough to build a client from: openapi-python-client generates
one from the document a real uvicorn server serves (offline, in a temporary folder), and the
test calls that server through it, with the typed per-algorithm job spec, the generated status
enum and the typed error body of a 404."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import uvicorn

import ml
from tests.api.conftest import Api, make_api
from tests.integration.stack import free_port
from tests.tiny_configs import TINY_CONFIGS
from worker.runner import run_job

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKAGE = "crucible_generated_client"  # not `crucible_client`, the hand-written one
GENERATE_SECONDS = 120
OFFLINE = "http://127.0.0.1:9"  # the discard port: nothing answers there
PROXIES = ("http_proxy", "https_proxy", "all_proxy")


class Served:
    """A uvicorn server running the app in a thread of this process, on a free port."""

    def __init__(self, api: Api) -> None:
        self.api = api
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with Served(make_api(tmp_path_factory.mktemp("served"))) as served:
        yield served


def generate(document: dict[str, object], folder: Path) -> Path:
    """The client package generated from `document` into `folder`: offline (a proxy that
    does not exist would fail any attempt to reach the network) and without post-hooks (its
    default ones run ruff from PATH)."""
    (folder / "spec.json").write_text(json.dumps(document))
    (folder / "config.yaml").write_text("post_hooks: []\n")
    package = folder / PACKAGE
    done = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(folder / "spec.json"),
            "--output-path",
            str(package),
            "--meta",
            "none",
            "--config",
            str(folder / "config.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=GENERATE_SECONDS,
        check=False,
        env=offline_environment(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # A warning means a schema it could not turn into a type, so part of the API is untyped.
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    return package


def offline_environment() -> dict[str, str]:
    """This process's environment with every proxy variable aimed at `OFFLINE`."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in (*PROXIES, "no_proxy")}
    return env | {name: OFFLINE for proxy in PROXIES for name in (proxy, proxy.upper())}


@pytest.fixture(scope="module")
def generated(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    document = httpx.get(f"{served.url}/openapi.json", timeout=30).json()
    package = generate(document, tmp_path_factory.mktemp("client"))
    sys.path.insert(0, str(package.parent))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(package.parent))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def module(client: ModuleType, name: str) -> ModuleType:
    return importlib.import_module(f"{client.__name__}.{name}")


def test_a_generated_client_lists_submits_reads_and_types_errors(
    served: Served, generated: ModuleType
) -> None:
    models = module(generated, "models")
    list_algorithms = module(generated, "api.algorithms.list_algorithms")
    create_job = module(generated, "api.jobs.create_job")
    get_job = module(generated, "api.jobs.get_job")
    client = module(generated, "client").Client(base_url=served.url, timeout=30)

    algorithms = list_algorithms.sync(client=client)
    assert isinstance(algorithms, models.AlgorithmsPublic)
    assert {a.name for a in algorithms.data} == set(ml.ALGORITHMS)

    spec = models.JobCreateValueIteration(
        algorithm=models.JobCreateValueIterationAlgorithm.VALUE_ITERATION,
        config=models.ValueIterationConfig.from_dict(TINY_CONFIGS["value_iteration"]),
        seed=3,
        name="from-a-generated-client",
    )
    created = create_job.sync(client=client, body=spec)
    assert isinstance(created, models.JobPublic), created
    assert created.status is models.JobStatusName.QUEUED
    assert created.algorithm == "value_iteration"

    run_job(created.id, served.api.settings, worker="client-test")
    job = get_job.sync(client=client, job_id=created.id)
    assert isinstance(job, models.JobPublic)
    assert job.status is models.JobStatusName.SUCCEEDED
    assert job.name == "from-a-generated-client" and job.seed == 3

    missing = get_job.sync_detailed(client=client, job_id="no-such-job")
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.ErrorBody)
    assert missing.parsed.code == "job_not_found"
    assert missing.parsed.field == "id"
