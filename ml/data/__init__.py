"""Datasets users upload: the kinds Crucible accepts, their file formats and validators.

A job names an uploaded dataset in its config's `dataset` field as
`{"kind": "uploaded", "id": "..."}`; whoever runs the job (the worker, or a notebook calling
`ml.train(..., datasets={id: dataset})`) hands the validated arrays to `train` by id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ml.core.errors import ConfigError

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
