"""The blocking client. Every method builds its request with `protocol.Requests` and runs
the resulting operation with blocking I/O; `crucible_client.aio.AsyncClient` runs the very
same operations with async I/O."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from itertools import chain
from typing import Any, TypeVar

import httpx

from crucible_client import protocol
from crucible_client.display import job_display, upload_bar
from crucible_client.errors import CrucibleConnectionError, CrucibleError
from crucible_client.events import EndEvent, JobEvent, ServerEvent, job_event, log_record
from crucible_client.protocol import DEFAULT_TIMEOUT, Operation, Sleep
from crucible_client.schemas import (
    Algorithm,
    Alias,
    Caller,
    CloneSpec,
    ContinueSpec,
    Dataset,
    Environment,
    Job,
    JobSpec,
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
PAGE = 100


class Client:
    """Crucible's API from Python.

    `Client()` talks to CRUCIBLE_URL (default http://127.0.0.1:8000) with the key in
    CRUCIBLE_API_KEY, if any, sent as `Authorization: Bearer <key>`. Pass `http=` to reuse a
    configured `httpx.Client` (Starlette's TestClient is one). Every error answer raises a
    `CrucibleError` subclass; a connection failure raises `CrucibleConnectionError`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        http: httpx.Client | None = None,
    ) -> None:
        url = protocol.resolve_url(base_url, http.base_url if http is not None else None)
        self.api = protocol.Requests(url, protocol.resolve_key(api_key), timeout)
        self._owned = http is None
        self.http = http if http is not None else httpx.Client()

    def close(self) -> None:
        if self._owned:
            self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- driving operations ------------------------------------------------------------------
    def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        try:
            return self.http.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise CrucibleConnectionError(f"{request.method} {request.url}: {exc}") from exc

    def run(self, operation: Operation[T]) -> T:
        """Run an operation of `protocol.Requests`: send what it asks, sleep when it says."""
        try:
            step = next(operation)
            while True:
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                    step = operation.send(None)
                else:
                    step = operation.send(self._send(step))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            operation.close()  # an error in I/O still closes what it opened (an upload's file)

    def _stream(self, stream: EventStream) -> Iterator[ServerEvent]:
        """Every event of a stream, reopened after a broken connection where it stopped."""
        while (request := stream.request()) is not None:
            time.sleep(stream.delay)
            try:
                response = self._send(request, stream=True)
                try:
                    if not response.is_success:
                        response.read()
                    stream.opened(response)
                    for line in chain(response.iter_lines(), [""]):
                        event = stream.feed(line)
                        if event is not None:
                            yield event
                        if stream.finished:
                            break
                finally:
                    response.close()
                stream.closed()
            except (httpx.TransportError, CrucibleConnectionError) as exc:
                stream.failed(exc)

    # -- algorithms and environments ---------------------------------------------------------
    def algorithms(self) -> list[Algorithm]:
        """What can be trained: each algorithm's config schema and the queries its models answer."""
        return self.run(self.api.algorithms()).data

    def environments(self) -> list[Environment]:
        return self.run(self.api.environments()).data

    # -- jobs --------------------------------------------------------------------------------
    def submit(
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
        """Submit a training job (202: queued). With `idempotency_key` a retry answers the
        job the first request created, never a second one."""
        spec = job_spec(
            algorithm, config, seed, name, tags, register_as, max_runtime_seconds, webhook
        )
        return self.run(self.api.submit(spec, idempotency_key))

    def get(self, job_id: str) -> Job:
        return self.run(self.api.get_job(job_id))

    def list_jobs(
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
        """One page of jobs. `tag={"team": "rl"}` keeps jobs tagged team=rl (a None value:
        any value); every filter must match."""
        params = protocol.job_filters(
            status=status, algorithm=algorithm, name=name, tag=tag, sort=sort,
            limit=limit, offset=offset,
        )  # fmt: skip
        return self.run(self.api.list_jobs(params))

    def iter_jobs(self, **filters: Any) -> Iterator[Job]:
        """Every job matching the filters of `list_jobs`, page after page."""
        offset = 0
        while True:
            page = self.list_jobs(**{**filters, "limit": PAGE, "offset": offset})
            yield from page.data
            offset += len(page.data)
            if not page.data or offset >= page.count:
                return

    def cancel(self, job_id: str) -> Job:
        return self.run(self.api.cancel(job_id))

    def resume(self, job_id: str) -> Job:
        """Queue a cancelled (or timed-out) job again; it goes on from its last checkpoint."""
        return self.run(self.api.resume(job_id))

    def delete_job(self, job_id: str) -> None:
        self.run(self.api.delete_job(job_id))

    def clone(
        self,
        job_id: str,
        seed: int | None = None,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> Job:
        """Submit a job again; `config` is a JSON merge patch onto the original's."""
        spec = CloneSpec(
            seed=seed, name=name, tags=dict(tags) if tags is not None else None,
            config=dict(config) if config is not None else None,
        )  # fmt: skip
        return self.run(self.api.clone(job_id, spec))

    def continue_training(
        self,
        model: str,
        config: Mapping[str, Any] | None = None,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Job:
        """A new job that goes on from the final state of the run that made `model`;
        `config` is a merge patch onto that run's config (say a larger `total_steps`)."""
        spec = continue_spec(config, name, tags)
        return self.run(self.api.continue_training(model, spec))

    def events(self, job_id: str, last_event_id: str | None = None) -> Iterator[JobEvent]:
        """The job's events as they happen (status, progress, metrics, warning), ending with
        `EndEvent` (the finished job). A broken connection is resumed where it stopped."""
        stream = self.api.events(job_id, last_event_id, None)
        for raw in self._stream(stream):
            yield job_event(raw)

    def wait(self, job_id: str, *, timeout: float | None = None, progress: bool = False) -> Job:
        """Block until the job has finished and return it (whatever its status). Follows its
        events (with a live bar when `progress`); polls `GET /v1/jobs/{id}` if they cannot
        stream. TimeoutError past `timeout` seconds."""
        deadline = deadline_after(timeout)
        with job_display(job_id, progress) as show:
            try:
                for raw in self._stream(self.api.events(job_id, None, deadline)):
                    event = job_event(raw)
                    show(event)
                    if isinstance(event, EndEvent):
                        return event.job
            except CrucibleError:
                pass  # no stream: polling answers the job, or its real error
            return self.run(self.api.poll_job(job_id, deadline=deadline, seen=show))

    def metrics(self, job_id: str, names: list[str] | None = None) -> Metrics:
        return self.run(self.api.metrics(job_id, names))

    def curves_png(
        self, job_id: str, names: list[str] | None = None, smoothing: float | None = None
    ) -> bytes:
        """The training curves as a PNG (one panel per metric), while the job runs too."""
        return self.run(self.api.curves_png(job_id, names, smoothing))

    def logs(self, job_id: str, after: int | None = None, limit: int = 100) -> Logs:
        """A page of the job's log records; pass `next_after` as `after` for the next."""
        return self.run(self.api.logs(job_id, after, limit))

    def follow_logs(self, job_id: str, after: int | None = None) -> Iterator[LogRecord]:
        """Every log record, as it is written, until the job has finished."""
        for raw in self._stream(self.api.follow_logs(job_id, after)):
            record = log_record(raw)
            if record is not None:
                yield record

    # -- models, names, queries --------------------------------------------------------------
    def list_models(
        self,
        *,
        algorithm: str | None = None,
        kind: str | None = None,
        sort: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[TrainedModel]:
        params = {"algorithm": algorithm, "kind": kind, "sort": sort, "limit": limit}
        return self.run(self.api.list_models({**params, "offset": offset}))

    def get_model(self, model: str) -> TrainedModel:
        """A model by id, by the id of its job, or by `name@alias` / `name@N`."""
        return self.run(self.api.get_model(model))

    def delete_model(self, model: str) -> None:
        self.run(self.api.delete_model(model))

    def download_model(self, model: str) -> bytes:
        return self.run(self.api.download_model(model))

    def import_model(self, source: Source) -> TrainedModel:
        return self.run(self.api.import_model(source))

    def queries(self, model: str) -> list[str]:
        """The names of the queries the model answers."""
        return self.get_model(model).queries

    def query(
        self,
        model: str,
        query_name: str,
        body: Mapping[str, Any] | None = None,
        *,
        format: str = "json",
        timeout: float | None = None,
    ) -> dict[str, Any] | bytes:
        """Ask a model a query: a dict for JSON, bytes for PNG, npy or GIF. A heavy query
        (202, run on a worker) is polled until its result is ready."""
        sent = dict(body) if body is not None else None
        return self.run(self.api.query(model, query_name, sent, format, deadline_after(timeout)))

    def register(self, name: str, model_id: str) -> ModelVersion:
        """Make the model the name's next version."""
        return self.run(self.api.register(name, model_id))

    def set_alias(self, name: str, alias: str, version: int) -> Alias:
        return self.run(self.api.set_alias(name, alias, version))

    def registry(
        self, name: str | None = None, *, limit: int = 50, offset: int = 0
    ) -> RegisteredName | Page[NameSummary]:
        """One name's versions and aliases, or (no name) a page of every name."""
        if name is not None:
            return self.run(self.api.registry_name(name))
        return self.run(self.api.registry_names({"limit": limit, "offset": offset}))

    # -- datasets ----------------------------------------------------------------------------
    def upload(
        self,
        path_or_bytes: Source,
        kind: str,
        name: str | None = None,
        *,
        progress: bool = False,
        idempotency_key: str | None = None,
    ) -> Dataset:
        """Upload a dataset (streamed in chunks; a progress bar on stderr when `progress`).
        The same content uploaded before answers the existing dataset."""
        size = source_size(path_or_bytes)
        with upload_bar(size, f"uploading {kind}", progress) as sent:
            operation = self.api.upload(
                path_or_bytes, kind, name, idempotency_key=idempotency_key, on_read=sent
            )
            return self.run(operation)

    def list_datasets(
        self,
        *,
        kind: str | None = None,
        name: str | None = None,
        builtin: bool = True,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[Dataset]:
        params = {"kind": kind, "name": name, "builtin": builtin, "limit": limit}
        return self.run(self.api.list_datasets({**params, "offset": offset}))

    def get_dataset(self, dataset_id: str) -> Dataset:
        return self.run(self.api.get_dataset(dataset_id))

    def delete_dataset(self, dataset_id: str) -> None:
        self.run(self.api.delete_dataset(dataset_id))

    # -- keys --------------------------------------------------------------------------------
    def create_key(
        self,
        tenant: str,
        scopes: list[str],
        *,
        name: str | None = None,
        expires_in_days: float | None = None,
    ) -> KeyCreated:
        """A new API key (admin scope). Its secret, `.key`, is answered this once."""
        spec = KeySpec(tenant=tenant, scopes=scopes, name=name, expires_in_days=expires_in_days)
        return self.run(self.api.create_key(spec))

    def list_keys(
        self, *, tenant: str | None = None, limit: int = 50, offset: int = 0
    ) -> Page[Key]:
        return self.run(self.api.list_keys({"tenant": tenant, "limit": limit, "offset": offset}))

    def revoke_key(self, key_id: str) -> Key:
        return self.run(self.api.revoke_key(key_id))

    def whoami(self) -> Caller:
        """The calling key's tenant and scopes."""
        return self.run(self.api.whoami())


def job_spec(
    algorithm: str,
    config: Mapping[str, Any] | None,
    seed: int,
    name: str | None,
    tags: Mapping[str, str] | None,
    register_as: str | RegisterSpec | None,
    max_runtime_seconds: float | None,
    webhook: WebhookSpec | Mapping[str, str] | None,
) -> JobSpec:
    """The body of a submission; a name alone is enough for `register_as`, and `webhook`
    may be `{"url", "secret"}`."""
    return JobSpec(
        algorithm=algorithm,
        config=dict(config or {}),
        seed=seed,
        name=name,
        tags=dict(tags or {}),
        register_as=RegisterSpec(name=register_as) if isinstance(register_as, str) else register_as,
        max_runtime_seconds=max_runtime_seconds,
        webhook=webhook_spec(webhook),
    )


def continue_spec(
    config: Mapping[str, Any] | None, name: str | None, tags: Mapping[str, str] | None
) -> ContinueSpec:
    return ContinueSpec(
        config=dict(config) if config is not None else None,
        name=name,
        tags=dict(tags) if tags is not None else None,
    )


def webhook_spec(webhook: WebhookSpec | Mapping[str, str] | None) -> WebhookSpec | None:
    if webhook is None or isinstance(webhook, WebhookSpec):
        return webhook
    return WebhookSpec.model_validate(dict(webhook))
