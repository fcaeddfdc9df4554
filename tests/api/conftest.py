"""In-process API tests: FastAPI's TestClient against a migrated SQLite database, with jobs
run by calling the worker's `run_job` directly (the same code a Celery worker runs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from store.settings import Settings, get_settings
from tests.helpers import migrate
from tests.tiny_configs import TINY_CONFIGS
from worker.runner import run_job


class Api:
    """A TestClient plus the settings behind it, and a way to run a job to its end."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.app.dependency_overrides[get_settings] = lambda: settings
        self.client = TestClient(self.app, raise_server_exceptions=False)

    def submit(
        self, algorithm: str, config: dict[str, Any] | None = None, **spec: Any
    ) -> dict[str, Any]:
        r = self.client.post(
            "/v1/jobs", json={"algorithm": algorithm, "config": config or {}, **spec}
        )
        assert r.status_code == 202, r.text
        return dict(r.json())

    def run(self, job_id: str) -> dict[str, Any]:
        run_job(job_id, self.settings, worker="test-worker")
        return dict(self.client.get(f"/v1/jobs/{job_id}").json())

    def train(
        self, algorithm: str, config: dict[str, Any] | None = None, **spec: Any
    ) -> dict[str, Any]:
        """Submit with the algorithm's tiny config (updated by `config`) and run to the end."""
        job = self.submit(algorithm, {**TINY_CONFIGS[algorithm], **(config or {})}, **spec)
        done = self.run(job["id"])
        assert done["status"] == "succeeded", done
        return done

    def error(self, method: str, url: str, status: int, **kwargs: Any) -> dict[str, Any]:
        r = self.client.request(method, url, **kwargs)
        assert r.status_code == status, r.text
        body = r.json()
        assert body["code"] and body["message"], body
        return dict(body)


def make_api(root: Path, **settings_: Any) -> Api:
    url = f"sqlite:///{root / 'crucible.sqlite'}"
    migrate(url)
    settings = Settings(var_dir=root, database_url=url, heartbeat_seconds=0.2, **settings_)
    return Api(settings)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """A fresh service per test."""
    yield make_api(tmp_path)


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One service for a module whose tests only read (trained models, queries)."""
    yield make_api(tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def trained(shared_api: Api) -> dict[str, dict[str, Any]]:
    """One succeeded job of each algorithm in the shared service, by algorithm name."""
    return {name: shared_api.train(name) for name in TINY_CONFIGS}
