"""The client against the real app in-process: the API tests' service (TestClient, migrated
SQLite, jobs run by calling the worker's `run_job`), handed to the SDK as its `http`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from crucible_client import Client

from tests.api.conftest import Api, make_api

BASE_URL = "http://testserver"
ADMIN = "crk_admin_for_client_tests_0123456789"
# A grid world solved in milliseconds: jobs that must run, but whose model nobody queries.
GRID = {"env": {"kind": "grid", "layout": ["S..", ".#.", "..G"]}, "discount": 0.9}


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own CRUCIBLE_URL or key must not leak into a test."""
    monkeypatch.delenv("CRUCIBLE_URL", raising=False)
    monkeypatch.delenv("CRUCIBLE_API_KEY", raising=False)


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One open service for the whole folder (tests add to it, never rely on it being empty)."""
    yield make_api(tmp_path_factory.mktemp("client-api"))


@pytest.fixture(scope="session")
def dqn_job(service: Api) -> dict[str, Any]:
    """A succeeded DQN job on CartPole (tiny budget), to query and plot."""
    return service.train("dqn")


@pytest.fixture
def client(service: Api) -> Client:
    return Client(BASE_URL, http=service.client)


@pytest.fixture
def secured(tmp_path: Path) -> Api:
    """A service that requires keys, with an admin key."""
    return make_api(tmp_path, auth_required=True, admin_api_key=ADMIN)
