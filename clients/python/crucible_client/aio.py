"""The async client: the same operations as `Client` (built and read by
`protocol.Requests`), run with `httpx.AsyncClient`; streams are async iterators."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

import httpx

from crucible_client import protocol
from crucible_client.client import PAGE, continue_spec, job_spec
from crucible_client.display import job_display, upload_bar
from crucible_client.errors import CrucibleConnectionError, CrucibleError
from crucible_client.events import EndEvent, JobEvent, ServerEvent, job_event, log_record
from crucible_client.protocol import DEFAULT_TIMEOUT, Operation, Sleep
from crucible_client.schemas import (
    Algorithm,
    Alias,
    Caller,
    CloneSpec,
    Dataset,
    Environment,
    Job,
    Key,
    KeyCreated,
    KeySpec,
    LogRecord,
    Logs,
    Metrics,
    ModelVersion,
    NameSummary,
    Page,
    RegisteredName,
    RegisterSpec,
    TrainedModel,
    WebhookSpec,
)
from crucible_client.streams import EventStream, deadline_after
from crucible_client.uploads import Source, source_size

T = TypeVar("T")


class AsyncClient:
    """`Client`'s methods as coroutines; `http=` takes an `httpx.AsyncClient` (one with an
    `httpx.ASGITransport` reaches an app in-process)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        url = protocol.resolve_url(base_url, http.base_url if http is not None else None)
        self.api = protocol.Requests(url, protocol.resolve_key(api_key), timeout)
        self._owned = http is None
        self.http = http if http is not None else httpx.AsyncClient()

    async def aclose(self) -> None:
        if self._owned:
            await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- driving operations ------------------------------------------------------------------
    async def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        try:
            return await self.http.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise CrucibleConnectionError(f"{request.method} {request.url}: {exc}") from exc

    async def run(self, operation: Operation[T]) -> T:
        """Run an operation of `protocol.Requests` with async I/O."""
        try:
            step = next(operation)
            while True:
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                    step = operation.send(None)
                else:
                    step = operation.send(await self._send(step))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            operation.close()  # an error in I/O still closes what it opened (an upload's file)

    async def _stream(self, stream: EventStream) -> AsyncIterator[ServerEvent]:
        """Every event of a stream, reopened after a broken connection where it stopped."""
        while (request := stream.request()) is not None:
            await asyncio.sleep(stream.delay)
            try:
                response = await self._send(request, stream=True)
                try:
                    if not response.is_success:
                        await response.aread()
                    stream.opened(response)
                    async for line in response.aiter_lines():
                        event = stream.feed(line)
                        if event is not None:
                            yield event
                        if stream.finished:
                            break
                    if not stream.finished and (event := stream.feed("")) is not None:
                        yield event
                finally:
                    await response.aclose()
                stream.closed()
            except (httpx.TransportError, CrucibleConnectionError) as exc:
                stream.failed(exc)

    # -- algorithms and environments ---------------------------------------------------------
    async def algorithms(self) -> list[Algorithm]:
        return (await self.run(self.api.algorithms())).data

    async def environments(self) -> list[Environment]:
        return (await self.run(self.api.environments())).data

    # -- jobs --------------------------------------------------------------------------------
    async def submit(
        self,
        algorithm: str,
        config: Mapping[str, Any] | None = None,
        *,
        seed: int = 0,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        register_as: str | RegisterSpec | None = None,
        max_runtime_seconds: float | None = None,
        webhook: WebhookSpec | Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        spec = job_spec(
            algorithm, config, seed, name, tags, register_as, max_runtime_seconds, webhook
        )
        return await self.run(self.api.submit(spec, idempotency_key))

    async def get(self, job_id: str) -> Job:
        return await self.run(self.api.get_job(job_id))

    async def list_jobs(
        self,
        *,
        status: str | None = None,
        algorithm: str | None = None,
        name: str | None = None,
        tag: Mapping[str, str | None] | None = None,
        sort: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[Job]:
        params = protocol.job_filters(
            status=status, algorithm=algorithm, name=name, tag=tag, sort=sort,
            limit=limit, offset=offset,
        )  # fmt: skip
        return await self.run(self.api.list_jobs(params))

    async def iter_jobs(self, **filters: Any) -> AsyncIterator[Job]:
        offset = 0
        while True:
            page = await self.list_jobs(**{**filters, "limit": PAGE, "offset": offset})
            for job in page.data:
                yield job
            offset += len(page.data)
            if not page.data or offset >= page.count:
                return

    async def cancel(self, job_id: str) -> Job:
        return await self.run(self.api.cancel(job_id))

    async def resume(self, job_id: str) -> Job:
        return await self.run(self.api.resume(job_id))

    async def delete_job(self, job_id: str) -> None:
        await self.run(self.api.delete_job(job_id))

    async def clone(
        self,
        job_id: str,
        seed: int | None = None,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> Job:
        spec = CloneSpec(
            seed=seed, name=name, tags=dict(tags) if tags is not None else None,
            config=dict(config) if config is not None else None,
        )  # fmt: skip
        return await self.run(self.api.clone(job_id, spec))

    async def continue_training(
        self,
        model: str,
        config: Mapping[str, Any] | None = None,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Job:
        spec = continue_spec(config, name, tags)
        return await self.run(self.api.continue_training(model, spec))

    async def events(
        self, job_id: str, last_event_id: str | None = None
    ) -> AsyncIterator[JobEvent]:
        async for raw in self._stream(self.api.events(job_id, last_event_id, None)):
            yield job_event(raw)

    async def wait(
        self, job_id: str, *, timeout: float | None = None, progress: bool = False
    ) -> Job:
        deadline = deadline_after(timeout)
        with job_display(job_id, progress) as show:
            try:
                async for raw in self._stream(self.api.events(job_id, None, deadline)):
                    event = job_event(raw)
                    show(event)
                    if isinstance(event, EndEvent):
                        return event.job
            except CrucibleError:
                pass  # no stream: polling answers the job, or its real error
            return await self.run(self.api.poll_job(job_id, deadline=deadline, seen=show))

    async def metrics(self, job_id: str, names: list[str] | None = None) -> Metrics:
        return await self.run(self.api.metrics(job_id, names))

    async def curves_png(
        self, job_id: str, names: list[str] | None = None, smoothing: float | None = None
    ) -> bytes:
        return await self.run(self.api.curves_png(job_id, names, smoothing))

    async def logs(self, job_id: str, after: int | None = None, limit: int = 100) -> Logs:
        return await self.run(self.api.logs(job_id, after, limit))

    async def follow_logs(self, job_id: str, after: int | None = None) -> AsyncIterator[LogRecord]:
        async for raw in self._stream(self.api.follow_logs(job_id, after)):
            record = log_record(raw)
            if record is not None:
                yield record

    # -- models, names, queries --------------------------------------------------------------
    async def list_models(
        self,
        *,
        algorithm: str | None = None,
        kind: str | None = None,
        sort: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[TrainedModel]:
        params = {"algorithm": algorithm, "kind": kind, "sort": sort, "limit": limit}
        return await self.run(self.api.list_models({**params, "offset": offset}))

    async def get_model(self, model: str) -> TrainedModel:
        return await self.run(self.api.get_model(model))

    async def delete_model(self, model: str) -> None:
        await self.run(self.api.delete_model(model))

    async def download_model(self, model: str) -> bytes:
        return await self.run(self.api.download_model(model))

    async def import_model(self, source: Source) -> TrainedModel:
        return await self.run(self.api.import_model(source))

    async def queries(self, model: str) -> list[str]:
        return (await self.get_model(model)).queries

    async def query(
        self,
        model: str,
        query_name: str,
        body: Mapping[str, Any] | None = None,
        *,
        format: str = "json",
        timeout: float | None = None,
    ) -> dict[str, Any] | bytes:
        sent = dict(body) if body is not None else None
        operation = self.api.query(model, query_name, sent, format, deadline_after(timeout))
        return await self.run(operation)

    async def register(self, name: str, model_id: str) -> ModelVersion:
        return await self.run(self.api.register(name, model_id))

    async def set_alias(self, name: str, alias: str, version: int) -> Alias:
        return await self.run(self.api.set_alias(name, alias, version))

    async def registry(
        self, name: str | None = None, *, limit: int = 50, offset: int = 0
    ) -> RegisteredName | Page[NameSummary]:
        if name is not None:
            return await self.run(self.api.registry_name(name))
        return await self.run(self.api.registry_names({"limit": limit, "offset": offset}))

    # -- datasets ----------------------------------------------------------------------------
    async def upload(
        self,
        path_or_bytes: Source,
        kind: str,
        name: str | None = None,
        *,
        progress: bool = False,
        idempotency_key: str | None = None,
    ) -> Dataset:
        size = source_size(path_or_bytes)
        with upload_bar(size, f"uploading {kind}", progress) as sent:
            operation = self.api.upload(
                path_or_bytes, kind, name, idempotency_key=idempotency_key, on_read=sent
            )
            return await self.run(operation)

    async def list_datasets(
        self,
        *,
        kind: str | None = None,
        name: str | None = None,
        builtin: bool = True,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[Dataset]:
        params = {"kind": kind, "name": name, "builtin": builtin, "limit": limit}
        return await self.run(self.api.list_datasets({**params, "offset": offset}))

    async def get_dataset(self, dataset_id: str) -> Dataset:
        return await self.run(self.api.get_dataset(dataset_id))

    async def delete_dataset(self, dataset_id: str) -> None:
        await self.run(self.api.delete_dataset(dataset_id))

    # -- keys --------------------------------------------------------------------------------
    async def create_key(
        self,
        tenant: str,
        scopes: list[str],
        *,
        name: str | None = None,
        expires_in_days: float | None = None,
    ) -> KeyCreated:
        spec = KeySpec(tenant=tenant, scopes=scopes, name=name, expires_in_days=expires_in_days)
        return await self.run(self.api.create_key(spec))

    async def list_keys(
        self, *, tenant: str | None = None, limit: int = 50, offset: int = 0
    ) -> Page[Key]:
        params = {"tenant": tenant, "limit": limit, "offset": offset}
        return await self.run(self.api.list_keys(params))

    async def revoke_key(self, key_id: str) -> Key:
        return await self.run(self.api.revoke_key(key_id))

    async def whoami(self) -> Caller:
        return await self.run(self.api.whoami())
