"""docker-compose.yml, the Dockerfile and the env example keep no secrets and pin what they pull.

Read as YAML, without Docker: every secret is a `${...}` reference that compose refuses to
start without, Redis requires a password, images are pinned to exact versions and the API
requires keys. `docker compose config` is run too when a compose client is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
EXAMPLE = ROOT / ".env.example"
SECRETS = (
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "CRUCIBLE_S3_ACCESS_KEY",
    "CRUCIBLE_S3_SECRET_KEY",
    "ADMIN_API_KEY",
)
REQUIRED = re.compile(r"\$\{(\w+):\?[^}]+\}")  # ${NAME:?message}: compose stops without NAME
# An exact version: 16.9, 7.4.4, 4.48, 3.11.13, optionally with a -variant suffix.
EXACT_TAG = re.compile(r"^v?\d+\.\d+(\.\d+)?(-[\w.-]+)?$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment must be a mapping"
    return {str(k): str(v) for k, v in env.items()}


def test_every_secret_is_a_required_reference() -> None:
    text = COMPOSE.read_text()
    assert set(SECRETS) <= set(REQUIRED.findall(text))
    for name in SECRETS:
        # Never a default (${NAME:-value}) or a bare ${NAME} that compose fills with "".
        assert not re.search(rf"\$\{{{name}(:?-|\}})", text), name


def test_no_literal_password_in_compose(compose: dict[str, Any]) -> None:
    secret_key = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|API_KEY|REDISCLI_AUTH", re.IGNORECASE)
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            if secret_key.search(key):
                assert value.startswith("${") and value.endswith("}"), f"{name}: {key}"
        for key in ("DATABASE_URL", "BROKER_URL"):
            url = environment(service).get(key)
            if url is not None:
                # user:password@ or :password@ must be a reference, never a literal.
                credentials = re.search(r"//([^@/]*)@", url)
                assert credentials is not None, f"{name}: {key} carries no password"
                password = credentials.group(1).partition(":")[2]
                assert REQUIRED.fullmatch(password), f"{name}: {key} has a literal password"


def test_redis_requires_a_password(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert "--requirepass" in command
    assert REQUIRED.fullmatch(command[command.index("--requirepass") + 1])
    assert REQUIRED.fullmatch(environment(redis)["REDISCLI_AUTH"])
    assert "redis-cli" in " ".join(redis["healthcheck"]["test"])
    for service in compose["services"].values():
        broker = environment(service).get("BROKER_URL")
        if broker is not None:
            assert broker.startswith("redis://:${REDIS_PASSWORD:?")


def test_images_are_pinned_to_exact_versions(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = str(service.get("image", ""))
        assert image, f"{name} names no image"
        tag = image.split("@")[0].rpartition(":")[2] if ":" in image else ""
        assert tag and tag != "latest", f"{name}: {image}"
        if "build" in service:  # built here from the Dockerfile, never pulled
            for arg, value in (service["build"].get("args") or {}).items():
                if arg == "BASE_IMAGE":
                    assert EXACT_TAG.match(value.rpartition(":")[2]), f"{name}: {value}"
            continue
        assert EXACT_TAG.match(tag), f"{name}: {image} is not an exact version"
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert base is not None
    assert EXACT_TAG.match(base.group(1).split("@")[0].rpartition(":")[2]), base.group(1)
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE), "runs as root"


def test_the_api_requires_keys(compose: dict[str, Any]) -> None:
    api = environment(compose["services"]["api"])
    assert api["AUTH_REQUIRED"] == "true"
    assert REQUIRED.fullmatch(api["ADMIN_API_KEY"])


def test_the_example_documents_every_secret_and_env_files_stay_out() -> None:
    example = dict(
        line.split("=", 1)
        for line in EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(example) == set(SECRETS)
    assert "openssl rand -hex" in EXAMPLE.read_text()
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()


def compose_client() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    return None


def test_compose_accepts_the_example_and_refuses_without_it(tmp_path: Path) -> None:
    client = compose_client()
    if client is None:
        pytest.skip("no docker compose client installed")
    # A copy in a folder of its own, so no .env beside the real file is read.
    shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")
    shutil.copy(EXAMPLE, tmp_path / "example.env")
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin"}
    base = [
        *client,
        "--project-directory",
        str(tmp_path),
        "-f",
        str(tmp_path / "docker-compose.yml"),
    ]
    ok = subprocess.run(
        [*base, "--env-file", str(tmp_path / "example.env"), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run([*base, "config", "-q"], capture_output=True, text=True, env=env)
    assert missing.returncode != 0
    assert "set " in missing.stderr and ".env.example" in missing.stderr
