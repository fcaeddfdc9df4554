"""GET /v1/environments: where the algorithms can act, with observation and action spaces,
and which algorithms accept each (`ml.environments`)."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import AnyCaller
from api.schemas import EnvironmentPublic, EnvironmentsPublic
from api.strict_input import StrictRoute
from ml.environments import catalog

router = APIRouter(prefix="/v1/environments", tags=["environments"], route_class=StrictRoute)


@router.get("", summary="List the environments", operation_id="list_environments")
def list_environments(_: AnyCaller) -> EnvironmentsPublic:
    data = [
        EnvironmentPublic(
            name=env.name,
            family=env.family,
            description=env.description,
            observation_space=env.observation,
            action_space=env.action,
            max_episode_steps=env.max_episode_steps,
            algorithms=env.algorithms,
            example=env.example,
        )
        for env in catalog()
    ]
    return EnvironmentsPublic(data=data, count=len(data))
