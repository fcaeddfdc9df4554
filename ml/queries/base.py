"""A query, declared once: what it is called, what it takes and answers, which models answer it.

The API serves every declared query at `/v1/models/{model}/{name}` with no per-query code, a
notebook calls `query.answer(model, {...})`, and both get the same validation: the request is a
pydantic model (shape-free checks: types, bounds), and `run` checks what depends on the model
(an observation's length, a state inside the grid) with `ml.core.validation`, raising
`QueryError`.

Which models answer a query is computed from what the model class exposes (`needs`: the
attributes and methods the query uses, such as `generate` or `Q`), never from a hand-kept
list, so a new model kind that exposes `Q` answers `q-values` without anyone listing it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ml.core.errors import QueryError, UnsupportedQuery
from ml.core.model import TrainedModel

JSON = "application/json"
NPY = "application/x-npy"
PNG = "image/png"
GIF = "image/gif"  # animated: an episode's frames (`render`)
# What `?format=` accepts, and the media type each stands for.
FORMATS = {"json": JSON, "npy": NPY, "png": PNG, "gif": GIF}

# Every request model's config: JSON's types, strictly (`"5"` and `true` are no numbers, `1`
# is a fine float), no NaN or infinity, no field it does not declare.
REQUEST = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
MAX_FEATURES = 65_536  # numbers in one observation or point; a batch has at most MAX_BATCH
Vector = Annotated[list[float], Field(max_length=MAX_FEATURES)]

Req = TypeVar("Req", bound=BaseModel)
Resp = TypeVar("Resp", bound=BaseModel)


def exposes(model_class: type, name: str) -> bool:
    """Whether instances of `model_class` have `name`: a method, a property, or an attribute
    annotated on the class (`V: np.ndarray`)."""
    if hasattr(model_class, name):
        return True
    return any(name in getattr(k, "__annotations__", {}) for k in model_class.__mro__)


def npy(array: Any) -> bytes:
    """An array as a `.npy` file (no pickle: object arrays are refused by numpy here)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def never(_: Any) -> bool:
    return False


@dataclass(frozen=True)
class SavedDataset:
    """An answer to keep as a dataset of `kind` (`ml.data`): its arrays, and a name."""

    kind: str
    name: str | None
    arrays: Mapping[str, Any]


@dataclass(frozen=True)
class Query(Generic[Req, Resp]):
    """One query. `run(model, request)` answers it; `renderers` add media types beyond JSON
    (each turns the response into bytes, or raises `QueryError` when this answer has no such
    rendering, e.g. a PNG of 3-D points); `heavy(request)` says whether it should run on a
    worker (an evaluation of a thousand episodes) rather than in the request. `asks_for(request)`
    says how many samples a request asks for and which field says so, for queries whose
    answers the server bounds by its `MAX_SAMPLES` setting; `deprecated` marks an old name
    kept for existing clients. `keeps(request)` says whether the client asks to keep the
    answer as a dataset (`rollouts` with `save_as_dataset`); `dataset_of(request, response)`
    is then what to store (`SavedDataset`): the service stores it and names it in the
    answer's `dataset` field."""

    name: str
    summary: str
    description: str
    request: type[Req]
    response: type[Resp]
    needs: tuple[str, ...] | tuple[tuple[str, ...], ...]
    run: Callable[[Any, Req], Resp]
    renderers: Mapping[str, Callable[[Resp], bytes]] = field(default_factory=dict)
    heavy: Callable[[Req], bool] = never
    examples: tuple[dict[str, Any], ...] = ()
    asks_for: Callable[[Req], tuple[str, int]] | None = None
    deprecated: bool = False
    keeps: Callable[[Req], bool] = never
    dataset_of: Callable[[Req, Resp], SavedDataset] | None = None

    @property
    def media_types(self) -> tuple[str, ...]:
        return (JSON, *self.renderers)

    @property
    def takes_input(self) -> bool:
        """False when an empty request is valid (every field has a default and together they
        pass the request's own checks): the query then also answers GET."""
        try:
            self.request.model_validate({})
        except ValidationError:
            return True
        return False

    def supports(self, model_class: type) -> bool:
        """`needs` is either names that must all be exposed, or alternatives of such names
        (`(("q_function",), ("Q",))`: one of them suffices)."""
        groups: list[tuple[str, ...]] = []
        for item in self.needs:
            if isinstance(item, tuple):
                groups.append(item)
        if not groups:
            groups = [tuple(n for n in self.needs if isinstance(n, str))]
        return any(all(exposes(model_class, n) for n in group) for group in groups)

    def parse(self, payload: Mapping[str, Any] | None) -> Req:
        try:
            return self.request.model_validate(payload or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or None
            raise QueryError(f"{where or 'request'}: {first['msg']}", field=where) from None

    def answer(self, model: TrainedModel, request: Req | Mapping[str, Any] | None) -> Resp:
        """Validate and run; the same checks as over HTTP."""
        if not self.supports(type(model)):
            raise UnsupportedQuery(
                f"a {model.kind} model does not answer '{self.name}'", field="query"
            )
        parsed = request if isinstance(request, self.request) else self.parse(request)  # type: ignore[arg-type]
        return self.run(model, parsed)

    def render(self, response: Resp, media_type: str) -> bytes:
        if media_type == JSON:
            return response.model_dump_json().encode()
        renderer = self.renderers.get(media_type)
        if renderer is None:
            raise QueryError(
                f"'{self.name}' answers {', '.join(self.media_types)}, not {media_type}",
                field="format",
            )
        # Outside any try: a renderer's own KeyError is a bug, not an unknown format, and its
        # QueryError (this answer has no such rendering) reaches the caller as it is.
        return renderer(response)
