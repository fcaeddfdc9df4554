"""The async client runs the same operations as the blocking one: a few calls through
`httpx.ASGITransport` into the same app, under `asyncio.run` (no pytest plugin needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from crucible_client import AsyncClient, EndEvent, JobStatus, NotFound

from tests.api.conftest import Api
from tests.client.conftest import BASE_URL, GRID


def test_async_client(service: Api, dqn_job: dict[str, Any]) -> None:
    async def scenario() -> None:
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            client = AsyncClient(http=http)
            assert "dqn" in {a.name for a in await client.algorithms()}
            job = await client.submit("value_iteration", GRID, tags={"team": "async"})
            await asyncio.to_thread(service.run, job.id)
            assert (await client.get(job.id)).status == JobStatus.succeeded
            assert [j.id async for j in client.iter_jobs(tag={"team": "async"})] == [job.id]
            assert (await client.wait(job.id, timeout=30)).status == JobStatus.succeeded
            seen = [event async for event in client.events(job.id)]
            assert isinstance(seen[-1], EndEvent) and seen[-1].job.id == job.id
            answer = await client.query(
                dqn_job["model_id"], "q-values", {"observations": [[0.0, 0.0, 0.0, 0.0]]}
            )
            assert isinstance(answer, dict) and answer["q_values"]
            png = await client.curves_png(dqn_job["id"])
            assert png.startswith(b"\x89PNG")
            with pytest.raises(NotFound) as missing:
                await client.get_model("no-such-model")
            assert missing.value.code == "model_not_found"

    asyncio.run(scenario())
