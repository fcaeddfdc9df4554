"""The artifact store: models, checkpoints, datasets and query results, addressed by URI.

Every artifact is written and read through one `ArtifactStore`, in the API as in the worker,
so a deployment moves from one machine (a local folder, the embedded default) to many (an
S3-compatible bucket) by changing `ARTIFACT_URL` alone. The database keeps each artifact's URI
(`file:///...` or `s3://bucket/key`), never a bare path.

Writes are atomic: a local file is written beside its destination and renamed over it, and an
S3 PUT replaces an object whole, so a reader never sees half an artifact.
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ml.core.errors import ArtifactError
from ml.core.model import TrainedModel, load_bytes, safe_torch_loads, torch_bytes
from store.settings import Settings


class ArtifactMissing(ArtifactError):
    """No artifact at that URI (deleted, never written, or written elsewhere)."""


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


class LocalArtifactStore(ArtifactStore):
    """A folder on this machine (or a volume every process mounts at the same place)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def uri(self, key: str) -> str:
        return self._path_for_key(key).as_uri()

    def _path_for_key(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
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
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path.as_uri()

    def get(self, uri: str) -> bytes:
        path = self._path(uri)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ArtifactMissing(f"no artifact at {uri}") from None

    def delete(self, uri: str) -> None:
        self._path(uri).unlink(missing_ok=True)

    def exists(self, uri: str) -> bool:
        return self._path(uri).is_file()


def open_artifact_store(settings: Settings) -> ArtifactStore:
    """The store `ARTIFACT_URL` names: a folder (the default) or `s3://bucket/prefix`."""
    url = settings.resolved_artifact_url
    if url.startswith("s3://"):
        raise ArtifactError("S3 artifact storage is not available yet")
    if url.startswith("file://"):
        url = unquote(urlparse(url).path)
    return LocalArtifactStore(Path(url))
