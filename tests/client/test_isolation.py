"""The client is a distribution of its own: importing it (and its command line) loads
neither torch nor any package of the server."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tests.helpers import ROOT

CHECK = """
import sys
import crucible_client, crucible_client.cli
loaded = sorted(
    name for name in sys.modules
    if name.split(".")[0] in ("torch", "api", "store", "worker", "ml", "numpy", "fastapi")
)
assert not loaded, loaded
"""


def test_import_loads_no_server_code() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert done.returncode == 0, done.stderr


def test_the_distribution_requires_no_server_packages() -> None:
    project = tomllib.loads((ROOT / "clients/python/pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("=")[0].split("[")[0] for dep in project["dependencies"]}
    assert names == {"httpx", "pydantic", "typer", "rich"}
    assert project["scripts"]["crucible"] == "crucible_client.cli:main"
