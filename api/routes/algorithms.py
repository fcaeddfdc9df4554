"""GET /v1/algorithms: what can be trained, each config's JSON schema, and the queries its
models answer with their request and response schemas."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

import ml
from api.auth import AnyCaller
from api.errors import ApiError
from api.schemas import AlgorithmPublic, AlgorithmsPublic, QueryPublic
from api.strict_input import StrictRoute
from ml.queries import QUERIES, Query
from store.models import shown

router = APIRouter(prefix="/v1/algorithms", tags=["algorithms"], route_class=StrictRoute)


def describe_query(query: Query[Any, Any]) -> QueryPublic:
    return QueryPublic(
        name=query.name,
        summary=query.summary,
        description=query.description,
        methods=["POST"] if query.takes_input else ["GET", "POST"],
        media_types=list(query.media_types),
        path=f"/v1/models/{{model}}/{query.name}",
        request_schema=query.request.model_json_schema(),
        response_schema=query.response.model_json_schema(),
    )


def describe(algorithm: ml.Algorithm[Any]) -> AlgorithmPublic:
    names = list(algorithm.queries)
    return AlgorithmPublic(
        name=algorithm.name,
        family=algorithm.family,
        description=algorithm.description,
        queue=algorithm.queue,
        queries=names,
        query_details=[describe_query(QUERIES[n]) for n in names],
        dataset_kinds=list(algorithm.dataset_kinds),
        config_schema=algorithm.config.model_json_schema(),
    )


@router.get("", summary="List the algorithms", operation_id="list_algorithms")
def list_algorithms(_: AnyCaller) -> AlgorithmsPublic:
    data = [describe(a) for a in ml.ALGORITHMS.values()]
    return AlgorithmsPublic(data=data, count=len(data))


@router.get("/{name}", summary="Describe an algorithm", operation_id="get_algorithm")
def get_algorithm(name: str, _: AnyCaller) -> AlgorithmPublic:
    if name not in ml.ALGORITHMS:
        raise ApiError(404, "unknown_algorithm", f"no algorithm named {shown(name)}")
    return describe(ml.ALGORITHMS[name])
