"""Trained models: what a succeeded job yields, how it is saved, and the queries it answers.

A model file is one `torch.save` of plain containers:
`{"format": 1, "kind": str, "metadata": {...}, "state": {name: Tensor | number | list}}`.
It is read back with `torch.load(weights_only=True)`, so a model file cannot run code
(unpickling arbitrary objects is how model files become exploits).

Every model kind subclasses `TrainedModel` and exposes what queries need: its networks, its
tables and small methods over them (`generate`, `q_function`, `V`, `reward`...). Which
queries a kind answers is computed from that (`ml.queries.queries_for`), never listed here.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import torch

from ml.core.errors import ArtifactError
from ml.core.metadata import metadata_problem

FORMAT_VERSION = 1

_KINDS: dict[str, type[TrainedModel]] = {}


class TrainedModel:
    """Base class of every model kind.

    `metadata` is JSON-friendly: kind, algorithm, shapes (observation size, action count,
    latent size, grid shape...), config, seed and library versions.
    """

    kind: ClassVar[str] = ""

    def __init__(self, metadata: dict[str, Any]) -> None:
        self.metadata = metadata

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            _KINDS[cls.kind] = cls

    # -- persistence -------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything needed to rebuild the model, as tensors and plain values."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> TrainedModel:
        raise NotImplementedError

    def payload(self) -> dict[str, Any]:
        """The model file's content: plain containers and tensors only."""
        return {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "metadata": self.metadata,
            "state": self.state(),
        }

    def save(self, path: str | Path) -> None:
        """Write atomically, so a reader never sees half a model."""
        atomic_torch_save(self.payload(), Path(path))

    def to_bytes(self) -> bytes:
        """The model file as bytes, for an artifact store."""
        return torch_bytes(self.payload())

    @property
    def shapes(self) -> dict[str, Any]:
        return dict(self.metadata.get("shapes", {}))


def atomic_torch_save(payload: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def torch_bytes(payload: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


UNREADABLE = "corrupt, truncated, or holding more than tensors and plain containers"


def safe_torch_loads(data: bytes, *, name: str = "artifact") -> Any:
    """Load bytes made of tensors and plain containers; never unpickles arbitrary objects.
    The error says what is wrong in our words; torch's, which may quote the file's contents,
    stay in the exception's cause for the log."""
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or not made of safe types
        raise ArtifactError(f"cannot read {name}: {UNREADABLE}") from exc


def safe_torch_load(path: str | Path) -> Any:
    """Load a file made of tensors and plain containers; never unpickles arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"no file at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or not made of safe types
        raise ArtifactError(f"cannot read {path.name}: {UNREADABLE}") from exc


def load(path: str | Path) -> TrainedModel:
    """Load any model saved by `TrainedModel.save`."""
    return from_payload(safe_torch_load(path), name=Path(path).name)


def load_bytes(data: bytes, *, name: str = "model file") -> TrainedModel:
    """Load a model from the bytes of a model file (an upload, an object in S3)."""
    return from_payload(safe_torch_loads(data, name=name), name=name)


def import_bytes(data: bytes, *, name: str = "model file") -> TrainedModel:
    """`load_bytes` for a file from outside (an upload), whose metadata is also checked to
    be plain JSON a database can store (`ml.core.metadata.metadata_problem`)."""
    model = load_bytes(data, name=name)
    problem = metadata_problem(model.metadata)
    if problem is not None:
        raise ArtifactError(f"{name}: its metadata {problem}")
    return model


def from_payload(payload: Any, *, name: str = "model file") -> TrainedModel:
    """Rebuild a model from a loaded file, checking it is one: any mismatch (a file from
    elsewhere, a tampered state) is an `ArtifactError`, never a crash."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise ArtifactError(f"{name} is not a Crucible model file")
    kind = payload.get("kind")
    if kind not in _KINDS:
        raise ArtifactError(f"{name}: unknown model kind {repr(kind)[:64]}")
    metadata, state = payload.get("metadata"), payload.get("state")
    if not isinstance(metadata, dict) or not isinstance(state, dict):
        raise ArtifactError(f"{name}: metadata and state must be dictionaries")
    try:
        return _KINDS[kind].from_state(metadata, state)
    except ArtifactError:
        raise
    except Exception as exc:  # missing keys, wrong shapes: the file does not fit its kind
        message = f"{name}: not a valid {kind} model (tensors missing, misnamed or misshapen)"
        raise ArtifactError(message) from exc


def model_kinds() -> dict[str, type[TrainedModel]]:
    """Every model kind defined so far, by name."""
    return dict(_KINDS)
