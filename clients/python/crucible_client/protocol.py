"""Every request of the API and the reading of every answer, without any I/O: the half of a
client the sync `Client` and the async `AsyncClient` share.

An operation is a generator: it yields an `httpx.Request` (and is sent back the response)
or a `Sleep` (and is sent back None), and returns its result. A driver runs it with blocking
or with async I/O; so polling a heavy query's result and polling a job are written once.
Streams (events, followed logs) are described by `streams.EventStream`, whose driver loop
only reads lines.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import IO, Any, TypeVar, cast
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from crucible_client.errors import check
from crucible_client.schemas import (
    Algorithms,
    Alias,
    AliasSpec,
    Caller,
    CloneSpec,
    ContinueSpec,
    Dataset,
    Environments,
    Job,
    JobSpec,
    Key,
    KeyCreated,
    KeySpec,
    Logs,
    Metrics,
    ModelVersion,
    NameSummary,
    Page,
    RegisteredName,
    TrainedModel,
    VersionSpec,
)
from crucible_client.streams import EventStream, remaining
from crucible_client.uploads import ReadProgress, Source, open_source

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 30.0
JSON = "application/json"


@dataclass(frozen=True)
class Sleep:
    """Ask the driver to wait (time.sleep or asyncio.sleep) before the next step."""

    seconds: float


Step = httpx.Request | Sleep
Operation = Generator[Step, Any, T]


def segment(value: str | int) -> str:
    """A path segment: ids and `name@alias` references, with everything else escaped."""
    return quote(str(value), safe="@")


def drop_none(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def tag_filters(tags: Mapping[str, str | None] | None) -> list[str] | None:
    """`{"team": "rl", "baseline": None}` as the API's `tag=team=rl&tag=baseline`."""
    if not tags:
        return None
    return [key if value is None else f"{key}={value}" for key, value in tags.items()]


def content(response: httpx.Response) -> dict[str, Any] | bytes:
    """A JSON answer parsed, any other media type (PNG, npy, GIF) as bytes."""
    if response.headers.get("content-type", "").startswith(JSON):
        return cast(dict[str, Any], response.json())
    return response.content


class Requests:
    """Builds the requests for one API (base URL, key, timeout) and reads the answers."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.seconds = timeout
        self.timeout = httpx.Timeout(timeout)

    # -- building ----------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        files: Any = None,
        data: Mapping[str, Any] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Request:
        sent = {"Accept": JSON, "User-Agent": "crucible-client/0.1"}
        if self.api_key:
            sent["Authorization"] = f"Bearer {self.api_key}"
        sent.update(headers or {})
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        return httpx.Request(
            method,
            url,
            params=drop_none(params or {}),
            json=json,
            files=files,
            data=data,
            headers=sent,
            extensions={"timeout": (timeout or self.timeout).as_dict()},
        )

    def call(self, request: httpx.Request, parse: Callable[[httpx.Response], T]) -> Operation[T]:
        """One request, its answer checked and parsed."""
        response = yield request
        return parse(check(response))

    def model(self, request: httpx.Request, model: type[M]) -> Operation[M]:
        return self.call(request, lambda r: model.model_validate_json(r.content))

    def nothing(self, request: httpx.Request) -> Operation[None]:
        return self.call(request, lambda r: None)

    # -- algorithms and environments ---------------------------------------------------------
    def algorithms(self) -> Operation[Algorithms]:
        return self.model(self.request("GET", "/v1/algorithms"), Algorithms)

    def environments(self) -> Operation[Environments]:
        return self.model(self.request("GET", "/v1/environments"), Environments)

    # -- jobs --------------------------------------------------------------------------------
    def submit(self, spec: JobSpec, idempotency_key: str | None) -> Operation[Job]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        request = self.request("POST", "/v1/jobs", json=spec.payload(), headers=headers)
        return self.model(request, Job)

    def get_job(self, job_id: str) -> Operation[Job]:
        return self.model(self.request("GET", f"/v1/jobs/{segment(job_id)}"), Job)

    def list_jobs(self, params: Mapping[str, Any]) -> Operation[Page[Job]]:
        return self.model(self.request("GET", "/v1/jobs", params=params), Page[Job])

    def cancel(self, job_id: str) -> Operation[Job]:
        return self.model(self.request("POST", f"/v1/jobs/{segment(job_id)}/cancel"), Job)

    def resume(self, job_id: str) -> Operation[Job]:
        return self.model(self.request("POST", f"/v1/jobs/{segment(job_id)}/resume"), Job)

    def delete_job(self, job_id: str) -> Operation[None]:
        return self.nothing(self.request("DELETE", f"/v1/jobs/{segment(job_id)}"))

    def clone(self, job_id: str, spec: CloneSpec) -> Operation[Job]:
        path = f"/v1/jobs/{segment(job_id)}/clone"
        return self.model(self.request("POST", path, json=spec.payload()), Job)

    def continue_training(self, model: str, spec: ContinueSpec) -> Operation[Job]:
        path = f"/v1/models/{segment(model)}/continue"
        return self.model(self.request("POST", path, json=spec.payload()), Job)

    def metrics(self, job_id: str, names: list[str] | None) -> Operation[Metrics]:
        path = f"/v1/jobs/{segment(job_id)}/metrics"
        return self.model(self.request("GET", path, params={"name": names}), Metrics)

    def curves_png(
        self, job_id: str, names: list[str] | None, smoothing: float | None
    ) -> Operation[bytes]:
        params = {"format": "png", "name": names, "smoothing": smoothing}
        request = self.request("GET", f"/v1/jobs/{segment(job_id)}/metrics", params=params)
        return self.call(request, lambda r: r.content)

    def logs(self, job_id: str, after: int | None, limit: int) -> Operation[Logs]:
        params = {"after": after, "limit": limit}
        return self.model(
            self.request("GET", f"/v1/jobs/{segment(job_id)}/logs", params=params), Logs
        )

    def poll_job(
        self,
        job_id: str,
        *,
        deadline: float | None,
        interval: float = 1.0,
        seen: Callable[[Job], None] | None = None,
    ) -> Operation[Job]:
        """GET the job until it has finished (the fallback when its events cannot stream)."""
        while True:
            job = yield from self.get_job(job_id)
            if seen is not None:
                seen(job)
            if job.finished:
                return job
            yield Sleep(min(interval, remaining(deadline, job_id)))

    # -- models, names, queries --------------------------------------------------------------
    def list_models(self, params: Mapping[str, Any]) -> Operation[Page[TrainedModel]]:
        return self.model(self.request("GET", "/v1/models", params=params), Page[TrainedModel])

    def get_model(self, model: str) -> Operation[TrainedModel]:
        return self.model(self.request("GET", f"/v1/models/{segment(model)}"), TrainedModel)

    def delete_model(self, model: str) -> Operation[None]:
        return self.nothing(self.request("DELETE", f"/v1/models/{segment(model)}"))

    def download_model(self, model: str) -> Operation[bytes]:
        request = self.request(
            "GET", f"/v1/models/{segment(model)}/file", headers={"Accept": "*/*"}
        )
        return self.call(request, lambda r: r.content)

    def import_model(self, source: Source) -> Operation[TrainedModel]:
        file, filename = open_source(source)
        with file:
            files = {"file": (filename, file, "application/octet-stream")}
            return (
                yield from self.model(self.request("POST", "/v1/models", files=files), TrainedModel)
            )

    def query(
        self, model: str, name: str, body: Any, media: str, deadline: float | None
    ) -> Operation[dict[str, Any] | bytes]:
        """Ask a model a query; a heavy one answers 202 with a Location, polled until done."""
        path = f"/v1/models/{segment(model)}/{segment(name)}"
        accept = {"Accept": "*/*"}
        request = self.request("POST", path, params={"format": media}, json=body, headers=accept)
        response = yield request
        while response.status_code == 202:
            location = response.headers.get("location") or response.json()["location"]
            wait = float(response.headers.get("retry-after") or 1.0)
            yield Sleep(min(wait, remaining(deadline, f"query {name}")))
            response = yield self.request("GET", location, headers=accept)
        return content(check(response))

    def register(self, name: str, model_id: str) -> Operation[ModelVersion]:
        path = f"/v1/registry/{segment(name)}/versions"
        body = VersionSpec(model_id=model_id).payload()
        return self.model(self.request("POST", path, json=body), ModelVersion)

    def set_alias(self, name: str, alias: str, version: int) -> Operation[Alias]:
        path = f"/v1/registry/{segment(name)}/aliases/{segment(alias)}"
        body = AliasSpec(version=version).payload()
        return self.model(self.request("PUT", path, json=body), Alias)

    def registry_name(self, name: str) -> Operation[RegisteredName]:
        return self.model(self.request("GET", f"/v1/registry/{segment(name)}"), RegisteredName)

    def registry_names(self, params: Mapping[str, Any]) -> Operation[Page[NameSummary]]:
        return self.model(self.request("GET", "/v1/registry", params=params), Page[NameSummary])

    # -- datasets ----------------------------------------------------------------------------
    def upload(
        self,
        source: Source,
        kind: str,
        name: str | None,
        *,
        idempotency_key: str | None = None,
        on_read: Callable[[int], None] | None = None,
    ) -> Operation[Dataset]:
        file, filename = open_source(source)
        with file:
            sent: IO[bytes] = (
                file if on_read is None else cast(IO[bytes], ReadProgress(file, on_read))
            )
            files = {"file": (filename, sent, "application/octet-stream")}
            headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
            data = drop_none({"kind": kind, "name": name})
            request = self.request("POST", "/v1/datasets", files=files, data=data, headers=headers)
            return (yield from self.model(request, Dataset))

    def list_datasets(self, params: Mapping[str, Any]) -> Operation[Page[Dataset]]:
        return self.model(self.request("GET", "/v1/datasets", params=params), Page[Dataset])

    def get_dataset(self, dataset_id: str) -> Operation[Dataset]:
        return self.model(self.request("GET", f"/v1/datasets/{segment(dataset_id)}"), Dataset)

    def delete_dataset(self, dataset_id: str) -> Operation[None]:
        return self.nothing(self.request("DELETE", f"/v1/datasets/{segment(dataset_id)}"))

    # -- keys --------------------------------------------------------------------------------
    def create_key(self, spec: KeySpec) -> Operation[KeyCreated]:
        return self.model(self.request("POST", "/v1/keys", json=spec.payload()), KeyCreated)

    def list_keys(self, params: Mapping[str, Any]) -> Operation[Page[Key]]:
        return self.model(self.request("GET", "/v1/keys", params=params), Page[Key])

    def revoke_key(self, key_id: str) -> Operation[Key]:
        return self.model(self.request("DELETE", f"/v1/keys/{segment(key_id)}"), Key)

    def whoami(self) -> Operation[Caller]:
        return self.model(self.request("GET", "/v1/keys/current"), Caller)

    # -- streams -----------------------------------------------------------------------------
    def events(self, job_id: str, last_event_id: str | None, deadline: float | None) -> EventStream:
        return EventStream(self, f"/v1/jobs/{segment(job_id)}/events", {}, last_event_id, deadline)

    def follow_logs(self, job_id: str, after: int | None) -> EventStream:
        params = {"follow": "true", "after": after}
        path = f"/v1/jobs/{segment(job_id)}/logs"
        return EventStream(self, path, params, None, None, ends_with_close=True)


def resolve_url(base_url: str | None, http_base: httpx.URL | None) -> str:
    """The API's URL: the argument, else CRUCIBLE_URL, else the given httpx client's base
    URL (a TestClient's), else the local default."""
    if base_url:
        return base_url
    if os.environ.get("CRUCIBLE_URL"):
        return os.environ["CRUCIBLE_URL"]
    if http_base is not None and str(http_base):
        return str(http_base)
    return DEFAULT_URL


def resolve_key(api_key: str | None) -> str | None:
    return api_key or os.environ.get("CRUCIBLE_API_KEY") or None


def job_filters(
    *,
    status: str | None,
    algorithm: str | None,
    name: str | None,
    tag: Mapping[str, str | None] | None,
    sort: str | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """The query parameters of `GET /v1/jobs`."""
    return {
        "status": status,
        "algorithm": algorithm,
        "name": name,
        "tag": tag_filters(tag),
        "sort": sort,
        "limit": limit,
        "offset": offset,
    }
