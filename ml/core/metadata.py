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

import math
import re
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


MAX_DEPTH = 32
MAX_CHARACTERS = 1_000_000  # about its length as JSON: it is stored and shown with the model
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL, and surrogates no encoding can write


def metadata_problem(metadata: dict[str, Any]) -> str | None:
    """What keeps `metadata` read from a file from outside (an imported model: anyone's) from
    being stored and shown as JSON, or None. Only strings without NUL, finite numbers,
    booleans, null, lists and objects with string keys, at most `MAX_DEPTH` deep and
    `MAX_CHARACTERS` long; an `algorithm`, if named, of 1-64 characters (the column's)."""
    algorithm = metadata.get("algorithm")
    if algorithm is not None and not (isinstance(algorithm, str) and 0 < len(algorithm) <= 64):
        return "names no algorithm of 1-64 characters"
    stack: list[tuple[str, Any, int]] = [("metadata", metadata, 0)]
    characters = 0
    while stack:
        where, value, depth = stack.pop()
        characters += 1  # every value takes a character or more
        if characters > MAX_CHARACTERS:
            break
        if depth > MAX_DEPTH:
            return f"nests more than {MAX_DEPTH} levels deep, at {where}"
        if value is None or isinstance(value, bool | int):
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                return f"holds {value} at {where}, which JSON cannot"
        elif isinstance(value, str):
            characters += len(value)
            if _UNSTORABLE.search(value):
                return f"holds a NUL or a lone surrogate at {where}"
        elif isinstance(value, list | tuple):
            stack.extend((f"{where}[{i}]", item, depth + 1) for i, item in enumerate(value))
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or _UNSTORABLE.search(key):
                    return f"has a key at {where} that is not a plain string"
                characters += len(key)
                stack.append((f"{where}.{key[:32]}", item, depth + 1))
        else:
            return f"holds a {type(value).__name__} at {where}, which is not JSON"
    if characters > MAX_CHARACTERS:
        return f"is longer than {MAX_CHARACTERS:,} characters as JSON"
    return None
