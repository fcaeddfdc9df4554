"""Crucible's machine-learning library: train and query models in plain Python.

    import ml
    model = ml.train("dqn", {"total_steps": 20_000}, seed=0)
    model.q_function(np.zeros((1, 4), np.float32))  # Q[1, n_actions]
    model.save("dqn.pt"); ml.load("dqn.pt")

Algorithms are grouped by family (`ml.gan`, `ml.rl`, `ml.tabular`, `ml.irl`) over a shared core
(`ml.core`: the training skeleton, hooks, metrics, seeding, networks). It knows nothing of the
service: no FastAPI, Celery or SQLAlchemy here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ml.core.algorithm import Algorithm
from ml.core.cost import Cost, check_cost
from ml.core.errors import (
    ConfigError,
    ConfigTooExpensive,
    QueryError,
    TrainingStopped,
    UnsupportedQuery,
)
from ml.core.hooks import Hooks, NullHooks, RecordingHooks
from ml.core.model import TrainedModel, load
from ml.registry import ALGORITHMS, get_algorithm

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "ConfigError",
    "ConfigTooExpensive",
    "Cost",
    "Hooks",
    "NullHooks",
    "QueryError",
    "RecordingHooks",
    "TrainedModel",
    "TrainingStopped",
    "UnsupportedQuery",
    "check_cost",
    "get_algorithm",
    "load",
    "train",
]


def train(
    algorithm: str,
    config: dict[str, Any] | None = None,
    *,
    seed: int = 0,
    hooks: Hooks | None = None,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
) -> TrainedModel:
    """Validate `config` against the algorithm's schema and train; see `ml.core.hooks`."""
    algo = get_algorithm(algorithm)
    parsed = algo.config.model_validate(config or {})
    return algo.run(
        parsed,
        seed=seed,
        hooks=hooks or NullHooks(),
        device=device,
        resume=resume,
        datasets=datasets,
        models=models,
    )
