"""GET /v1/algorithms: what can be trained, with each config's JSON schema."""

from __future__ import annotations

from fastapi import APIRouter

import ml
from api.errors import ApiError
from api.schemas import AlgorithmPublic, AlgorithmsPublic

router = APIRouter(prefix="/v1/algorithms", tags=["algorithms"])


def describe(algorithm: ml.Algorithm) -> AlgorithmPublic:
    return AlgorithmPublic(
        name=algorithm.name,
        family=algorithm.family,
        description=algorithm.description,
        queue=algorithm.queue,
        queries=list(algorithm.queries),
        config_schema=algorithm.config.model_json_schema(),
    )


@router.get("")
def list_algorithms() -> AlgorithmsPublic:
    data = [describe(a) for a in ml.ALGORITHMS.values()]
    return AlgorithmsPublic(data=data, count=len(data))


@router.get("/{name}")
def get_algorithm(name: str) -> AlgorithmPublic:
    if name not in ml.ALGORITHMS:
        raise ApiError(404, "unknown_algorithm", f"no algorithm named {name!r}")
    return describe(ml.ALGORITHMS[name])
