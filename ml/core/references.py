"""References from one job's config to a finished model (a behaviour policy to collect data
with, a policy to evaluate).

A config holds a `ModelReference` (subclassed with the algorithm's own options); the service
checks the reference names a model the tenant owns when the job is submitted
(`referenced_models` finds them all), and the worker loads the models and hands them to
`train` as `models`, keyed by the reference string. `resolve_model` is how `train` gets one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ml.core.errors import ConfigError
from ml.core.model import TrainedModel


class ModelReference(BaseModel):
    """A finished model, by id or by name (`name`, `name@alias`, `name@v3`)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["model"] = "model"
    model: str = Field(
        min_length=1,
        max_length=200,
        description="A finished model's id, or its registered name as name@alias or name@vN.",
    )


def referenced_models(config: BaseModel, prefix: str = "") -> list[tuple[str, str]]:
    """(field path, reference) of every model reference in a parsed config, however deep:
    `[("policy.model", "lake@prod")]`."""
    found: list[tuple[str, str]] = []
    for name, value in config.__dict__.items():
        if isinstance(value, ModelReference):
            found.append((f"{prefix}{name}.model", value.model))
        elif isinstance(value, BaseModel):
            found.extend(referenced_models(value, f"{prefix}{name}."))
    return found


def resolve_model(
    ref: ModelReference, models: Mapping[str, Any] | None, *, field: str
) -> TrainedModel:
    """The loaded model a reference names, or a ConfigError naming the config field."""
    found = (models or {}).get(ref.model)
    if not isinstance(found, TrainedModel):
        raise ConfigError(f"model {ref.model!r} was not provided", field=field)
    return found
