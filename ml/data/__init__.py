"""Datasets users upload: the kinds Crucible accepts, their file formats and validators.

A job names an uploaded dataset in its config's `dataset` field as
`{"kind": "uploaded", "id": "..."}`; whoever runs the job (the worker, or a notebook calling
`ml.train(..., datasets={id: dataset})`) hands the validated arrays to `train` by id.

Kinds (one module each; `describe_kind` gives the format a user reads in the API docs):

- `samples` (`ml.data.samples`): points for a GAN, `x` and optional labels `y`.
- `transitions` (`ml.data.transitions`): (s, a, r, s', done) rows for Fitted Q Iteration.
- `trajectories` (`ml.data.trajectories`): demonstrations for inverse RL, stored flat.
- `mdp` (`ml.data.mdp`): P[s, a, s'] and R of a finite MDP for dynamic programming.

An upload goes through `parse_upload` once: its format is recognised by content
(`ml.data.formats`), every rule of its kind is checked, and it comes out as canonical arrays
with fixed dtypes and a JSON-friendly summary. Any problem, including a hostile or damaged
file, is a `DatasetError` naming the array (or column) and the row. The service stores
`to_npz(dataset)` and reads it back with `from_npz`, which runs the same checks: the canonical
arrays are themselves a valid upload.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ml.core.errors import ConfigError, DatasetError
from ml.data import mdp, samples, trajectories, transitions
from ml.data.formats import FORMAT_NAMES, KindSpec, sniff, write_npz

__all__ = [
    "DATASET_KINDS",
    "Dataset",
    "DatasetKind",
    "UploadedDataset",
    "describe_kind",
    "from_npz",
    "parse_upload",
    "resolve",
    "to_npz",
]

DatasetKind = Literal["samples", "transitions", "trajectories", "mdp"]


class UploadedDataset(BaseModel):
    """A reference to a dataset uploaded through `POST /v1/datasets`."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["uploaded"] = Field("uploaded", description="Dataset tag: uploaded data.")
    id: str = Field(min_length=1, max_length=64, description="The dataset's id.")


@dataclass(frozen=True)
class Dataset:
    """Validated arrays of one kind; `summary` is JSON-friendly (rows, shapes, dtypes...)."""

    kind: DatasetKind
    arrays: dict[str, np.ndarray]
    summary: dict[str, Any] = field(default_factory=dict)


def resolve(spec: UploadedDataset, datasets: Mapping[str, Any] | None, kind: str) -> Dataset:
    """The dataset a config names, checked to be of `kind`."""
    found = (datasets or {}).get(spec.id)
    if not isinstance(found, Dataset):
        raise ConfigError(f"dataset {spec.id!r} was not provided", field="dataset.id")
    if found.kind != kind:
        raise ConfigError(
            f"dataset {spec.id!r} is a {found.kind} dataset; this needs {kind}",
            field="dataset.id",
        )
    return found


_KINDS: dict[str, KindSpec] = {
    spec.name: spec for spec in (samples.SPEC, transitions.SPEC, trajectories.SPEC, mdp.SPEC)
}
DATASET_KINDS: tuple[str, ...] = tuple(_KINDS)


def _spec(kind: str) -> KindSpec:
    spec = _KINDS.get(kind)
    if spec is None:
        message = f"unknown dataset kind {kind!r}; one of {', '.join(DATASET_KINDS)}"
        raise DatasetError(message, field="kind")
    return spec


def describe_kind(kind: str) -> str:
    """One paragraph on the kind's file formats, for API docs and error hints."""
    return _spec(kind).description


def parse_upload(kind: str, data: bytes, *, max_bytes: int) -> Dataset:
    """Recognise, validate and canonicalize an uploaded file of `kind`.

    `max_bytes` bounds the file and everything made from it: each `.npz` member's declared
    uncompressed size and their total (checked before anything is inflated), and the dense P
    of a sparse MDP.
    """
    spec = _spec(kind)
    if len(data) > max_bytes:
        message = f"the file is {len(data)} bytes; the limit is {max_bytes}"
        raise DatasetError(message, field="file")
    if not data or data.isspace():
        raise DatasetError("the file is empty", field="file")
    fmt = sniff(data)
    if fmt not in spec.formats:
        accepted = " or ".join(FORMAT_NAMES[f] for f in spec.formats)
        message = f"{kind} datasets are {accepted}; this file looks like {FORMAT_NAMES[fmt]}"
        raise DatasetError(message, field="file")
    arrays, summary = spec.canonical(spec.read(fmt, data, max_bytes))
    return Dataset(kind=cast(DatasetKind, spec.name), arrays=arrays, summary=summary)


def to_npz(dataset: Dataset) -> bytes:
    """The canonical storage form of a dataset: `np.savez_compressed` of its arrays."""
    return write_npz(dataset.arrays)


def from_npz(kind: str, data: bytes, *, max_bytes: int | None = None) -> Dataset:
    """A stored dataset read back from `to_npz`'s bytes, checked again, never unpickled.

    The checks are the upload's (vectorized, a scan per rule), so a damaged or swapped file
    is a `DatasetError`, not a crash inside a training job. `max_bytes` is optional here:
    stored files were already held to the upload limit.
    """
    spec = _spec(kind)
    if not data.startswith(b"PK"):
        raise DatasetError("a stored dataset is an .npz archive; this is not", field="file")
    arrays, summary = spec.canonical(spec.read("npz", data, max_bytes))
    return Dataset(kind=cast(DatasetKind, spec.name), arrays=arrays, summary=summary)
