"""Real-browser tests of the dashboard: Debian's chromium, driven by Selenium through
/usr/bin/chromedriver, against a real stack (uvicorn and a Celery worker, embedded mode).

Nothing is downloaded: Selenium Manager is told to stay offline and is handed the driver
and the browser, and chromium starts with its background networking off. Without chromium
the tests skip locally (CI installs it in `.ci/run`).

Two API processes share one database, broker and worker: the open one `make run` starts,
and one that requires keys, for the key prompt.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.integration.conftest import FAST_LEASES, STACK_SETTINGS
from tests.integration.stack import Stack

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ADMIN_KEY = "admin-key-for-the-browser-tests-0123456789"

# Chromium's own log of what a page's scripts did wrong (uncaught errors, console.error),
# collected from before the page's first script: installed through the DevTools protocol,
# so the page's Content-Security-Policy does not apply to it.
ERROR_COLLECTOR = """
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) => window.__errors.push(String(e.reason)));
const consoleError = console.error.bind(console);
console.error = (...args) => {
  window.__errors.push(args.map(String).join(" "));
  consoleError(...args);
};
"""


@dataclass
class SecuredApi(Stack):
    """A second API over `shared`'s database, broker and artifacts, with keys required; it
    starts no worker of its own: `shared`'s runs the jobs of both."""

    shared: Stack | None = None

    def start_worker(self) -> subprocess.Popen[bytes]:
        assert self.shared is not None
        return self.shared.workers[0]


def stack_env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in STACK_SETTINGS}
    return env | FAST_LEASES | {"VAR_DIR": str(var_dir)} | extra


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The open stack (AUTH_REQUIRED=false), as `make run` starts it."""
    var_dir = tmp_path_factory.mktemp("browser")
    database_url = f"sqlite:///{var_dir.resolve() / 'crucible.sqlite'}"
    stack = Stack("browser", var_dir, stack_env(var_dir), database_url)
    try:
        yield stack.start()
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def secured(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The same data served by an API that requires keys."""
    env = stack_env(stack.var_dir, AUTH_REQUIRED="true", ADMIN_API_KEY=ADMIN_KEY)
    api = SecuredApi(
        "browser-secured",
        tmp_path_factory.mktemp("secured"),  # its own log; the data is the open stack's
        env,
        stack.database_url,
        shared=stack,
    )
    try:
        yield api.start()
    finally:
        api.stop()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $DASHBOARD_SCREENSHOTS, else a temporary folder."""
    chosen = os.environ.get("DASHBOARD_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        message = "chromium and chromium-driver are not installed (apt-get install them)"
        if IN_CI:
            pytest.fail(message + " (CI=true: .ci/run installs them)")
        pytest.skip(message)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": ERROR_COLLECTOR})
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()
