"""What an algorithm is to the rest of Crucible: its config, its train function, its model.

Each algorithm module (`ml/gan/gan.py`, `ml/rl/dqn.py`, ...) defines a pydantic config (extra
fields forbidden, every number bounded, defaults that train well), a `train` function and a
model class, and exports them as `ALGORITHM`; `ml.registry` lists the modules by explicit
import. `TrainFn` types `train`, so mypy checks every algorithm against the contract.

One vocabulary across configs: a run's budget is one top-level field, `total_steps`
(environment or generator steps) or `max_iterations` (iterative solvers); training data is
`dataset`; intervals are `checkpoint_interval` and `eval_interval`. Metric names follow
`ml.core.metrics`. The plumbing every `train` needs (resume, checkpoints, stop, metric
buffering, health checks) is `ml.core.training.Run`. What a config costs to run is the
algorithm's own estimate (`cost`, see `ml.core.cost`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel

from ml.core.cost import CostFn
from ml.core.hooks import Hooks
from ml.core.model import TrainedModel
from ml.queries import queries_for

ConfigT = TypeVar("ConfigT", bound=BaseModel)
ConfigT_contra = TypeVar("ConfigT_contra", bound=BaseModel, contravariant=True)

Family = Literal["gan", "rl", "dp", "irl"]


class TrainFn(Protocol[ConfigT_contra]):
    """`train(config, *, seed, hooks, device, resume, datasets, models) -> TrainedModel`:
    `datasets` are the uploaded datasets the config names, by id; `models` the finished
    models it references (`ml.core.references`), by reference."""

    def __call__(
        self,
        config: ConfigT_contra,
        *,
        seed: int,
        hooks: Hooks,
        device: str | None = None,
        resume: dict[str, Any] | None = None,
        datasets: Mapping[str, Any] | None = None,
        models: Mapping[str, Any] | None = None,
    ) -> TrainedModel: ...


@dataclass(frozen=True)
class Algorithm(Generic[ConfigT]):
    name: str
    family: Family
    description: str
    config: type[ConfigT]
    train: TrainFn[ConfigT]
    model: type[TrainedModel]
    # Which worker queue should run it: neural nets want a GPU, tabular methods do not.
    queue: Literal["gpu", "cpu"]
    # Its config's estimated compute, total and per step (`ml.core.cost`), which the service
    # bounds before it accepts a job.
    cost: CostFn[ConfigT]
    # Kinds of uploaded dataset (`ml.data`) its config's `dataset` field accepts.
    dataset_kinds: tuple[str, ...] = ()
    # Whether a run stopped and resumed from its checkpoint ends with exactly the model of an
    # uninterrupted run (all state, every random generator included, is checkpointed); False
    # where some is not (an environment's episode in progress restarts on resume).
    exact_resume: bool = True

    @property
    def queries(self) -> tuple[str, ...]:
        """The queries its models answer, from what the model class exposes."""
        return queries_for(self.model)

    def run(
        self,
        config: BaseModel,
        *,
        seed: int,
        hooks: Hooks,
        device: str | None = None,
        resume: dict[str, Any] | None = None,
        datasets: Mapping[str, Any] | None = None,
        models: Mapping[str, Any] | None = None,
    ) -> TrainedModel:
        """Train from an already validated config (the worker's entry point)."""
        if not isinstance(config, self.config):
            config = self.config.model_validate(config.model_dump())
        return self.train(
            config,
            seed=seed,
            hooks=hooks,
            device=device,
            resume=resume,
            datasets=datasets,
            models=models,
        )
