"""The artifact store contract, run against both backends: a local folder and S3 on a real
SeaweedFS server (tests/s3server.py). Whatever a deployment picks, the API and the worker see
the same behaviour: round trips, overwrites, clear errors, no escaping the store, and no
reader ever seeing half an object."""

from __future__ import annotations

import struct
import threading
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import torch

from ml.core.errors import ArtifactError
from ml.core.model import TrainedModel
from store.artifacts import (
    ArtifactMissing,
    ArtifactStore,
    ArtifactUnavailable,
    LocalArtifactStore,
    S3ArtifactStore,
    create_bucket_if_missing,
    open_artifact_store,
)
from store.settings import Settings
from tests.s3server import S3Server

BUCKET = "crucible-test"


class TinyModel(TrainedModel):
    """The smallest model kind: one tensor."""

    kind = "test_artifact_model"

    def __init__(self, metadata: dict[str, Any], weight: torch.Tensor) -> None:
        super().__init__(metadata)
        self.weight = weight

    def state(self) -> dict[str, Any]:
        return {"weight": self.weight}

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> TrainedModel:
        return cls(metadata, state["weight"])


@pytest.fixture(scope="session")
def s3_bucket(s3_server: S3Server) -> str:
    create_bucket_if_missing(s3_server.settings(f"s3://{BUCKET}/artifacts"))
    return BUCKET


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    """A fresh store: a folder of its own, or a prefix of its own in the test bucket."""
    if request.param == "local":
        return open_artifact_store(Settings(var_dir=tmp_path, artifact_url="", artifact_dir=None))
    server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    url = f"s3://{bucket}/runs/{uuid.uuid4().hex[:12]}"
    return open_artifact_store(server.settings(url))


def test_settings_pick_the_backend(store: ArtifactStore) -> None:
    uri = store.uri("models/m.pt")
    if isinstance(store, LocalArtifactStore):
        assert uri.startswith("file:///") and uri.endswith("/artifacts/models/m.pt")
    else:
        assert isinstance(store, S3ArtifactStore)
        assert uri == f"s3://{BUCKET}/{store.prefix}/models/m.pt"


def test_put_get_exists_delete(store: ArtifactStore) -> None:
    uri = store.put("models/a.pt", b"model bytes")
    assert uri == store.uri("models/a.pt")
    assert store.exists(uri)
    assert store.get(uri) == b"model bytes"
    store.delete(uri)
    assert not store.exists(uri)
    with pytest.raises(ArtifactMissing):
        store.get(uri)
    store.delete(uri)  # deleting what is gone is not an error


def test_overwrite_replaces_the_whole_object(store: ArtifactStore) -> None:
    store.put("results/r", b"a much longer first version")
    uri = store.put("results/r", b"short")
    assert store.get(uri) == b"short"
    assert store.put("empty", b"") and store.get(store.uri("empty")) == b""


def test_missing_artifact(store: ArtifactStore, tmp_path: Path) -> None:
    uri = store.uri("never/written.pt")
    assert not store.exists(uri)
    with pytest.raises(ArtifactMissing, match="no artifact at"):
        store.get(uri)
    with pytest.raises(ArtifactMissing):
        store.load_model(uri)
    with pytest.raises(ArtifactMissing):
        store.get_file(uri, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def _foreign_uris(store: ArtifactStore) -> list[str]:
    """URIs this store did not make: other schemes, places outside its folder or prefix."""
    if isinstance(store, LocalArtifactStore):
        return [
            f"s3://{BUCKET}/models/a.pt",
            "https://example.com/models/a.pt",
            (store.root.parent / "elsewhere" / "a.pt").as_uri(),
            store.root.as_uri() + "/../a.pt",
        ]
    assert isinstance(store, S3ArtifactStore)
    return [
        "file:///tmp/models/a.pt",
        "https://example.com/models/a.pt",
        f"s3://other-bucket/{store.prefix}/models/a.pt",
        f"s3://{BUCKET}/{store.prefix}-sibling/models/a.pt",
        f"s3://{BUCKET}/models/a.pt",
        f"s3://{BUCKET}/{store.prefix}/../a.pt",
        f"s3://{BUCKET}/{store.prefix}/models//a.pt",
    ]


def test_foreign_uris_are_refused(store: ArtifactStore) -> None:
    for uri in _foreign_uris(store):
        for operation in (store.get, store.exists, store.delete):
            with pytest.raises(ArtifactError) as caught:
                operation(uri)
            assert not isinstance(caught.value, ArtifactMissing), uri


@pytest.mark.parametrize(
    "key",
    ["../a.pt", "models/../../a.pt", "/etc/a.pt", "a//b", "", "a/./b", "a\\b", "a/..", "\x00"],
)
def test_keys_cannot_escape_the_store(store: ArtifactStore, key: str) -> None:
    with pytest.raises(ArtifactError, match="not a relative name"):
        store.put(key, b"x")
    with pytest.raises(ArtifactError):
        store.uri(key)


def test_checkpoint_helpers(store: ArtifactStore) -> None:
    assert store.load_checkpoint("job1") is None
    state = {"step": 3, "weights": torch.arange(4.0), "nested": {"lr": 0.1}}
    uri = store.save_checkpoint("job1", state)
    assert uri == store.checkpoint_uri("job1")
    store.save_checkpoint("job1", state | {"step": 4})  # one per job, overwritten in place
    loaded = store.load_checkpoint("job1")
    assert loaded is not None and loaded["step"] == 4 and loaded["nested"] == {"lr": 0.1}
    assert torch.equal(loaded["weights"], torch.arange(4.0))
    store.delete_checkpoint("job1")
    assert store.load_checkpoint("job1") is None
    store.delete_checkpoint("job1")


def test_model_round_trip(store: ArtifactStore) -> None:
    model = TinyModel({"kind": TinyModel.kind, "shapes": {"n": 3}}, torch.tensor([1.0, 2.0, 3.0]))
    uri = store.save_model("models/tiny.pt", model)
    loaded = store.load_model(uri)
    assert isinstance(loaded, TinyModel)
    assert loaded.metadata == model.metadata and loaded.shapes == {"n": 3}
    assert torch.equal(loaded.weight, model.weight)
    store.put("models/junk.pt", b"not a model")
    with pytest.raises(ArtifactError, match=r"cannot read junk\.pt"):
        store.load_model(store.uri("models/junk.pt"))


def test_files_stream_in_and_out(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "dataset.npz"
    source.write_bytes(bytes(range(256)) * 12_000)  # 3 MB
    uri = store.put_file("datasets/d.npz", source)
    assert uri == store.uri("datasets/d.npz")
    assert store.get(uri) == source.read_bytes()
    destination = tmp_path / "scratch" / "copy.npz"
    store.get_file(uri, destination)
    assert destination.read_bytes() == source.read_bytes()
    assert [p.name for p in destination.parent.iterdir()] == ["copy.npz"]  # no temp left


def _version(value: int) -> bytes:
    """Version `value` of the contended object: its length, then one byte repeated, several
    MB long and a different length each time, so a torn or mixed read cannot pass."""
    size = 5 * 1024 * 1024 + value * 4099
    return struct.pack(">II", value, size) + bytes([value % 256]) * size


def _check_version(data: bytes) -> int:
    value, size = struct.unpack(">II", data[:8])
    assert len(data) == 8 + size, f"version {value}: read {len(data) - 8} bytes of {size}"
    assert data == _version(value), f"version {value}: bytes of another version mixed in"
    return value


def test_a_reader_never_sees_half_an_object(store: ArtifactStore) -> None:
    uri = store.put("models/contended.pt", _version(0))
    writes, reading, stop = 8, threading.Event(), threading.Event()
    seen: list[int] = []
    failures: list[BaseException] = []

    def read_while_writing() -> None:
        try:
            while not stop.is_set():
                seen.append(_check_version(store.get(uri)))
                reading.set()
        except BaseException as exc:
            failures.append(exc)
            reading.set()

    reader = threading.Thread(target=read_while_writing)
    reader.start()
    try:
        assert reading.wait(timeout=60), "the reader never read"
        for value in range(1, writes + 1):
            store.put("models/contended.pt", _version(value))
    finally:
        stop.set()
        reader.join(timeout=120)
    assert not failures, failures
    assert seen[0] == 0 and seen == sorted(seen), seen  # versions only move forward
    assert _check_version(store.get(uri)) == writes


# -- S3 only --------------------------------------------------------------------------------
def test_create_bucket_if_missing(s3_server: S3Server) -> None:
    settings = s3_server.settings(f"s3://crucible-new-{uuid.uuid4().hex[:8]}/a")
    assert create_bucket_if_missing(settings) is True
    assert create_bucket_if_missing(settings) is False
    store = open_artifact_store(settings)
    assert store.get(store.put("k", b"v")) == b"v"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"aws_secret_access_key": "wrong-secret"}, "SignatureDoesNotMatch"),
        ({"aws_access_key_id": "nobody"}, "InvalidAccessKeyId"),
    ],
)
def test_wrong_credentials_are_a_clear_error(
    s3_server: S3Server, s3_bucket: str, overrides: dict[str, str], code: str
) -> None:
    store = open_artifact_store(s3_server.settings(f"s3://{s3_bucket}/creds", **overrides))
    for operation in (lambda: store.put("k", b"v"), lambda: store.get(store.uri("k"))):
        with pytest.raises(ArtifactUnavailable, match="AWS_SECRET_ACCESS_KEY") as caught:
            operation()
        assert code in str(caught.value) and s3_server.endpoint_url in str(caught.value)
    with pytest.raises(ArtifactUnavailable):
        store.exists(store.uri("k"))


def test_missing_bucket_is_a_clear_error(s3_server: S3Server) -> None:
    store = open_artifact_store(s3_server.settings("s3://no-such-bucket/a"))
    with pytest.raises(ArtifactUnavailable, match="bucket does not exist"):
        store.put("k", b"v")


def test_invalid_artifact_urls(s3_server: S3Server) -> None:
    for url in ("s3://", "s3://UPPER/a", "s3://b/a", "s3://bucket/../a"):
        with pytest.raises(ArtifactError):
            open_artifact_store(s3_server.settings(url))


def _raw_client(server: S3Server) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
    )


def test_reads_are_checked_against_the_writers_checksum(
    s3_server: S3Server, s3_bucket: str
) -> None:
    store = open_artifact_store(s3_server.settings(f"s3://{s3_bucket}/checked"))
    assert isinstance(store, S3ArtifactStore)
    client = _raw_client(s3_server)
    # written by another tool, without a checksum: read as it is
    client.put_object(Bucket=s3_bucket, Key="checked/plain", Body=b"plain")
    assert store.get(store.uri("plain")) == b"plain"
    # bytes that do not match their checksum are never returned
    client.put_object(
        Bucket=s3_bucket, Key="checked/torn", Body=b"torn", Metadata={"sha256": "0" * 64}
    )
    with pytest.raises(ArtifactUnavailable, match="do not match"):
        store.get(store.uri("torn"))
