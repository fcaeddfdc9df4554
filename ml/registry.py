"""The algorithms Crucible can train: one `Algorithm` entry per algorithm module.

Each algorithm module in `ml/algorithms/` defines a pydantic config (extra fields forbidden,
every number bounded, defaults that train well), a `train(config, *, seed, hooks, device,
resume)` function and a model class, and exports them as `ALGORITHM`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from ml.hooks import Hooks
from ml.model import TrainedModel

TrainFn = Callable[..., TrainedModel]


@dataclass(frozen=True)
class Algorithm:
    name: str
    family: Literal["gan", "rl", "dp", "irl"]
    description: str
    config: type[BaseModel]
    train: TrainFn
    model: type[TrainedModel]
    # Which worker queue should run it: neural nets want a GPU, tabular methods do not.
    queue: Literal["gpu", "cpu"]

    @property
    def queries(self) -> tuple[str, ...]:
        return self.model.queries

    def run(
        self,
        config: BaseModel,
        *,
        seed: int,
        hooks: Hooks,
        device: str | None = None,
        resume: dict[str, Any] | None = None,
    ) -> TrainedModel:
        return self.train(config, seed=seed, hooks=hooks, device=device, resume=resume)


_MODULES = ("gan", "dqn", "value_iteration", "maxent_irl")


def _load() -> dict[str, Algorithm]:
    # CRUCIBLE_PARTIAL_REGISTRY=1 skips modules that fail to import (development only).
    partial = os.environ.get("CRUCIBLE_PARTIAL_REGISTRY") == "1"
    found: dict[str, Algorithm] = {}
    for name in _MODULES:
        try:
            module = importlib.import_module(f"ml.algorithms.{name}")
        except ImportError:
            if partial:
                continue
            raise
        algorithm: Algorithm = module.ALGORITHM
        found[algorithm.name] = algorithm
    return found


ALGORITHMS: dict[str, Algorithm] = _load()


def get_algorithm(name: str) -> Algorithm:
    try:
        return ALGORITHMS[name]
    except KeyError:
        known = ", ".join(sorted(ALGORITHMS))
        raise KeyError(f"unknown algorithm {name!r}; known: {known}") from None
