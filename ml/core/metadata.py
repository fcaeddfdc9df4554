"""The metadata every model carries: what it is, what made it, and how it went.

JSON-friendly, and the same keys for every algorithm, so the service can list, filter and
describe models without knowing their kinds:

- `kind`, `algorithm`: the model class's tag (`TrainedModel.kind`) and the registry name;
- `shapes`: what the model needs to be rebuilt without its training data or environment
  (observation size, action count, latent and data sizes, grid shape...);
- `config`: the validated config, as JSON; `seed`: the job's seed;
- `versions`: the libraries that produced it (`ml.core.versions`);
- `summary`: the outcome in a few numbers (final evaluation, iterations, converged...).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ml.core.versions import library_versions


def model_metadata(
    *,
    kind: str,
    algorithm: str,
    config: BaseModel,
    seed: int,
    shapes: dict[str, Any],
    summary: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """The metadata dictionary of a model; `extra` adds kind-specific sections."""
    return {
        "kind": kind,
        "algorithm": algorithm,
        "shapes": shapes,
        "config": config.model_dump(mode="json"),
        "seed": seed,
        "versions": library_versions(),
        "summary": summary,
        **extra,
    }
