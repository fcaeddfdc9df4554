"""The artifact store: models, checkpoints, datasets and query results, addressed by URI.

Every artifact is written and read through one `ArtifactStore`, in the API as in the worker,
so a deployment moves from one machine (a local folder, the embedded default) to many (an
S3-compatible bucket) by changing `ARTIFACT_URL` alone. The database keeps each artifact's URI
(`file:///...` or `s3://bucket/prefix/key`), never a bare path.

A reader never sees half an artifact. A local file is written beside its destination and
renamed over it. An S3 PUT replaces an object whole, and every object carries the SHA-256 of
its bytes in its metadata: a read whose bytes do not match (a server that let an overwrite
tear a read in flight, a connection cut short) is retried, never returned.

The S3 backend never creates its bucket: a deployment creates it once (docker-compose's
`create-bucket` service calls `create_bucket_if_missing`), so a typo in `ARTIFACT_URL` is an
error, not a new empty bucket.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ml.core.errors import ArtifactError
from ml.core.model import TrainedModel, load_bytes, safe_torch_loads, torch_bytes
from store.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType

CHUNK = 1024 * 1024


log = logging.getLogger(__name__)


class ArtifactMissing(ArtifactError):
    """No artifact at that URI (deleted, never written, or written elsewhere)."""


class ArtifactUnavailable(ArtifactError):
    """The store cannot be used right now: the server is unreachable, refused the credentials,
    has no such bucket, or kept returning torn reads. Worth a 503, not a 4xx."""

    code = "artifact_store_unavailable"


def check_key(key: str) -> str:
    """A key is a relative, slash-separated name (`models/<id>.pt`). Empty, `.` and `..`
    segments, backslashes and control characters are refused, so no key leaves the store's
    folder or prefix, and every key has one spelling."""
    segments = key.split("/")
    if any(s in ("", ".", "..") for s in segments) or re.search(r"[\\\x00-\x1f\x7f]", key):
        raise ArtifactError(f"artifact key {key!r} is not a relative name inside the store")
    return key


class ArtifactStore(ABC):
    """Bytes by key; keys are slash-separated relative names such as `models/<id>.pt`."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """The URI the database stores for `key`."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> str:
        """Write `data` under `key` atomically; return its URI."""

    @abstractmethod
    def get(self, uri: str) -> bytes:
        """The artifact's bytes; `ArtifactMissing` if there is none."""

    @abstractmethod
    def delete(self, uri: str) -> None:
        """Remove the artifact; a missing one is not an error."""

    @abstractmethod
    def exists(self, uri: str) -> bool: ...

    # -- files too large to hold in memory (backends stream them) --------------------------
    def put_file(self, key: str, source: Path) -> str:
        """Write the file at `source` under `key` atomically; return its URI."""
        return self.put(key, source.read_bytes())

    def get_file(self, uri: str, destination: Path) -> None:
        """Write the artifact to `destination`, which is replaced whole or not at all."""
        atomic_write(destination, [self.get(uri)])

    # -- typed helpers shared by every backend --------------------------------------------
    def save_torch(self, key: str, payload: Any) -> str:
        return self.put(key, torch_bytes(payload))

    def load_torch(self, uri: str) -> Any:
        return safe_torch_loads(self.get(uri), name=uri.rsplit("/", 1)[-1])

    def save_model(self, key: str, model: TrainedModel) -> str:
        return self.put(key, model.to_bytes())

    def load_model(self, uri: str) -> TrainedModel:
        return load_bytes(self.get(uri), name=uri.rsplit("/", 1)[-1])

    # -- checkpoints: one per job, overwritten in place -------------------------------------
    def checkpoint_uri(self, job_id: str) -> str:
        return self.uri(f"checkpoints/{job_id}.pt")

    def save_checkpoint(self, job_id: str, state: dict[str, Any]) -> str:
        return self.save_torch(f"checkpoints/{job_id}.pt", state)

    def load_checkpoint(self, job_id: str) -> dict[str, Any] | None:
        try:
            state = self.load_torch(self.checkpoint_uri(job_id))
        except ArtifactMissing:
            return None
        return state if isinstance(state, dict) else None

    def delete_checkpoint(self, job_id: str) -> None:
        self.delete(self.checkpoint_uri(job_id))


def delete_quietly(store: ArtifactStore, uri: str, owner: str) -> None:
    """Delete a file whose record is gone (a deleted job's checkpoint, a superseded one): a
    failure leaves the file behind, which costs space, not correctness, so it is logged."""
    try:
        store.delete(uri)
    except Exception as exc:
        log.warning("%s: could not delete %s: %s", owner, uri, exc)


def atomic_write(path: Path, chunks: Iterable[bytes]) -> None:
    """Write beside `path`, then rename over it: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


class LocalArtifactStore(ArtifactStore):
    """A folder on this machine (or a volume every process mounts at the same place)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def uri(self, key: str) -> str:
        return self._path_for_key(key).as_uri()

    def _path_for_key(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):  # a symlink inside the folder pointing out
            raise ArtifactError(f"artifact key {key!r} leaves the store")
        return path

    def _path(self, uri: str) -> Path:
        parsed = urlparse(uri)
        if parsed.scheme not in ("file", ""):
            raise ArtifactError(f"{uri!r} is not a file URI")
        path = Path(unquote(parsed.path)).resolve()
        if not path.is_relative_to(self.root):
            raise ArtifactError(f"{uri!r} is outside the artifact folder {self.root}")
        return path

    def put(self, key: str, data: bytes) -> str:
        path = self._path_for_key(key)
        atomic_write(path, [data])
        return path.as_uri()

    def put_file(self, key: str, source: Path) -> str:
        path = self._path_for_key(key)
        with source.open("rb") as stream:
            atomic_write(path, _read_chunks(stream))
        return path.as_uri()

    def get(self, uri: str) -> bytes:
        path = self._path(uri)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise ArtifactMissing(f"no artifact at {uri}") from None

    def get_file(self, uri: str, destination: Path) -> None:
        path = self._path(uri)
        try:
            stream = path.open("rb")  # an open file survives a rename over it: one version
        except (FileNotFoundError, IsADirectoryError):
            raise ArtifactMissing(f"no artifact at {uri}") from None
        with stream:
            atomic_write(destination, _read_chunks(stream))

    def delete(self, uri: str) -> None:
        self._path(uri).unlink(missing_ok=True)

    def exists(self, uri: str) -> bool:
        return self._path(uri).is_file()


# -- S3 -----------------------------------------------------------------------------------
SHA256_METADATA = "sha256"  # sent as the x-amz-meta-sha256 header
READ_ATTEMPTS = 4  # reads whose bytes do not match their checksum, before giving up
NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
REFUSED = {
    "403",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
}
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> `("bucket", "some/prefix")`; the prefix may be empty."""
    if not url.startswith("s3://"):
        raise ArtifactError(f"{url!r} is not an s3://bucket/prefix URL")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    if not BUCKET_NAME.match(bucket):
        raise ArtifactError(f"{url!r}: {bucket!r} is not a valid S3 bucket name")
    if prefix:
        check_key(prefix)
    return bucket, prefix


def _s3_config(endpoint_url: str | None) -> Config:
    return Config(
        # Path-style (`endpoint/bucket/key`) is what SeaweedFS, MinIO and Ceph answer without
        # wildcard DNS; AWS itself picks its own style.
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        # Throttling, 5xx and dropped connections are retried with backoff; a refusal is not.
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=16,
        # Checksums only where the API requires them: many S3-compatible servers reject the
        # streaming CRC trailers botocore sends by default. Integrity comes from Content-MD5
        # on writes and the SHA-256 metadata on reads.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


@lru_cache(maxsize=8)
def _cached_client(
    endpoint_url: str | None,
    region: str,
    access_key: str | None,
    secret_key: str | None,
    pid: int,  # a client must not cross a fork: its pooled connections would be shared
) -> S3Client:
    session = boto3.session.Session(
        aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
    )
    return session.client("s3", endpoint_url=endpoint_url, config=_s3_config(endpoint_url))


def s3_client(settings: Settings) -> S3Client:
    """A client for the settings' endpoint and credentials, shared by the process (boto3
    clients are thread-safe). Without keys in the settings, boto3's own chain applies
    (environment, ~/.aws, an instance or task role)."""
    return _cached_client(
        settings.s3_endpoint_url or None,
        settings.aws_region,
        settings.aws_access_key_id or None,
        settings.aws_secret_access_key or None,
        os.getpid(),
    )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _translate(exc: ClientError, what: str, endpoint: str) -> ArtifactError:
    code = _error_code(exc)
    if code in NOT_FOUND:
        return ArtifactMissing(f"no artifact at {what}")
    if code == "NoSuchBucket":
        return ArtifactUnavailable(
            f"{what}: the bucket does not exist on {endpoint}; create it first "
            "(store.artifacts.create_bucket_if_missing, docker-compose's create-bucket service)"
        )
    if code in REFUSED:
        return ArtifactUnavailable(
            f"{what}: {endpoint} refused access ({code}); check AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY and what that key may do in the bucket"
        )
    message = exc.response.get("Error", {}).get("Message", "")
    return ArtifactUnavailable(f"{what}: {endpoint} answered {code or 'an error'}: {message}")


@contextmanager
def _s3_errors(what: str, endpoint: str) -> Iterator[None]:
    """botocore's exceptions as `ArtifactError`s that say what to check."""
    try:
        yield
    except ClientError as exc:
        raise _translate(exc, what, endpoint) from exc
    except BotoCoreError as exc:  # unreachable, timed out, no credentials, cut short
        raise ArtifactUnavailable(f"{what}: cannot use the S3 store at {endpoint}: {exc}") from exc


class S3ArtifactStore(ArtifactStore):
    """Objects under `s3://bucket/prefix/` on AWS S3 or an S3-compatible server (SeaweedFS,
    MinIO, Ceph...). URIs are `s3://bucket/prefix/<key>`; a URI of another bucket, prefix or
    scheme is refused, never followed."""

    def __init__(self, bucket: str, prefix: str, client: S3Client) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client
        self._base = f"s3://{bucket}/" + (f"{self.prefix}/" if self.prefix else "")
        self._endpoint = client.meta.endpoint_url

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ArtifactStore:
        bucket, prefix = parse_s3_url(settings.resolved_artifact_url)
        return cls(bucket, prefix, s3_client(settings))

    def __repr__(self) -> str:
        return f"S3ArtifactStore({self._base!r} on {self._endpoint})"

    def uri(self, key: str) -> str:
        return self._base + check_key(key)

    def _object_key(self, uri: str) -> str:
        if not uri.startswith(self._base):
            raise ArtifactError(f"{uri!r} is not in this artifact store ({self._base})")
        key = check_key(uri.removeprefix(self._base))
        return f"{self.prefix}/{key}" if self.prefix else key

    # -- writes -----------------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> str:
        uri = self.uri(key)
        md5 = hashlib.md5(data, usedforsecurity=False).digest()
        self._put(uri, data, md5, hashlib.sha256(data).hexdigest())
        return uri

    def put_file(self, key: str, source: Path) -> str:
        uri = self.uri(key)
        md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
        with source.open("rb") as stream:
            for chunk in _read_chunks(stream):
                md5.update(chunk)
                sha256.update(chunk)
            stream.seek(0)
            self._put(uri, stream, md5.digest(), sha256.hexdigest())  # streamed, one PUT
        return uri

    def _put(self, uri: str, body: bytes | IO[bytes], md5: bytes, sha256: str) -> None:
        with _s3_errors(uri, self._endpoint):
            self._client.put_object(
                Bucket=self.bucket,
                Key=self._object_key(uri),
                Body=body,
                ContentMD5=base64.b64encode(md5).decode(),  # the server checks the upload
                Metadata={SHA256_METADATA: sha256},  # readers check what they downloaded
            )

    # -- reads ------------------------------------------------------------------------------
    def get(self, uri: str) -> bytes:
        chunks: list[bytes] = []
        self._read(uri, chunks.append, chunks.clear)
        return b"".join(chunks)

    def get_file(self, uri: str, destination: Path) -> None:
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "wb") as out:

                def restart() -> None:
                    out.seek(0)
                    out.truncate()

                self._read(uri, out.write, restart)
            os.replace(tmp, destination)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _read(
        self, uri: str, write: Callable[[bytes], object], restart: Callable[[], object]
    ) -> None:
        """Stream one version of the object into `write`, checking it against the SHA-256
        its writer recorded; a read cut short or torn is thrown away (`restart`) and retried."""
        key = self._object_key(uri)
        problem = ""
        for _ in range(READ_ATTEMPTS):
            with _s3_errors(uri, self._endpoint):  # missing, refused, unreachable: no retry
                response = self._client.get_object(Bucket=self.bucket, Key=key)
            digest = hashlib.sha256()
            try:
                for chunk in response["Body"].iter_chunks(CHUNK):
                    digest.update(chunk)
                    write(chunk)
            except BotoCoreError as exc:  # IncompleteReadError, ResponseStreamingError
                problem = f"{uri}: the download was cut short ({exc})"
            else:
                expected = response.get("Metadata", {}).get(SHA256_METADATA)
                if expected is None or digest.hexdigest() == expected:
                    return
                problem = f"{uri}: the bytes read do not match the SHA-256 they were written with"
            restart()
        raise ArtifactUnavailable(f"{problem} ({READ_ATTEMPTS} attempts)")

    def exists(self, uri: str) -> bool:
        key = self._object_key(uri)
        try:
            with _s3_errors(uri, self._endpoint):
                self._client.head_object(Bucket=self.bucket, Key=key)
        except ArtifactMissing:
            return False
        return True

    def delete(self, uri: str) -> None:
        key = self._object_key(uri)
        with _s3_errors(uri, self._endpoint):
            self._client.delete_object(Bucket=self.bucket, Key=key)


def create_bucket_if_missing(settings: Settings) -> bool:
    """Create the bucket `ARTIFACT_URL` names unless it exists; True if this call made it.

    For deployment and tests only (docker-compose's `create-bucket` service runs it once):
    the store itself never creates a bucket."""
    bucket, _ = parse_s3_url(settings.resolved_artifact_url)
    client = s3_client(settings)
    endpoint = client.meta.endpoint_url
    what = f"bucket {bucket!r}"
    try:
        with _s3_errors(what, endpoint):
            client.head_bucket(Bucket=bucket)
        return False
    except ArtifactMissing:
        pass
    with _s3_errors(what, endpoint):
        try:
            if settings.aws_region == "us-east-1":  # AWS refuses a constraint naming it
                client.create_bucket(Bucket=bucket)
            else:
                region = cast("BucketLocationConstraintType", settings.aws_region)
                client.create_bucket(
                    Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
                )
        except ClientError as exc:
            if _error_code(exc) == "BucketAlreadyOwnedByYou":  # made by another process since
                return False
            raise
    return True


def open_artifact_store(settings: Settings) -> ArtifactStore:
    """The store `ARTIFACT_URL` names: a folder (the default) or `s3://bucket/prefix`."""
    url = settings.resolved_artifact_url
    if url.startswith("s3://"):
        return S3ArtifactStore.from_settings(settings)
    if url.startswith("file://"):
        url = unquote(urlparse(url).path)
    return LocalArtifactStore(Path(url))
