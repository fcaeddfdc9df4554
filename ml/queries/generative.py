"""Queries of generative models: draw samples (from seeds or given latents), walk the latent
space between two points, score points with the discriminator.

Samples and walks answer JSON, `.npy` (an array of the model's `sample_shape` per sample) and
PNG: a grid of images for an image model, a scatter (a walk: a path) for a model of 2-D
points (`ml.queries.figures`). Both draw from the generator of the best evaluation by default,
or from the one training left (`generator: "last"`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, Field, model_validator

from ml.core.errors import QueryError
from ml.core.validation import MAX_BATCH, observation_batch
from ml.queries.base import NPY, PNG, REQUEST, Query, Vector, npy
from ml.queries.figures import image_grid_png, scatter_png

MAX_SAMPLES = 10_000

Which = Literal["best", "last"]
GENERATOR_DESCRIPTION = (
    "best: the generator of the best evaluation during training (the default); last: the "
    "generator as training left it."
)


class Generates(Protocol):
    data_dim: int

    @property
    def sample_shape(self) -> tuple[int, ...]: ...

    def generate(self, n: int, seed: int | None, *, which: Which = "best") -> np.ndarray: ...


class Decodes(Protocol):
    data_dim: int
    latent_dim: int

    @property
    def sample_shape(self) -> tuple[int, ...]: ...

    def latents(self, n: int, seed: int) -> np.ndarray: ...

    def generate_from(self, z: np.ndarray, *, which: Which = "best") -> np.ndarray: ...


class Discriminates(Protocol):
    data_dim: int

    def discriminate(self, x: np.ndarray) -> np.ndarray: ...


class Conditional(Protocol):
    """A conditional generator (`ml.gan.adversarial.AdversarialModel` with `n_classes`)."""

    n_classes: int | None

    def generate(
        self, n: int, seed: int | None, labels: list[int] | None = None, *, which: Which = "best"
    ) -> np.ndarray: ...

    def generate_from(
        self, z: np.ndarray, labels: list[int] | None = None, *, which: Which = "best"
    ) -> np.ndarray: ...

    def discriminate(self, x: np.ndarray, labels: list[int] | None = None) -> np.ndarray: ...


def checked_labels(model: object, labels: list[int] | None, n: int) -> Conditional | None:
    """The model as a conditional one when `labels` are given and fit it: one per sample,
    each in 0..n_classes-1 (QueryError otherwise, and for a model that is not conditional);
    None when no labels are given."""
    if labels is None:
        return None
    n_classes = getattr(model, "n_classes", None)
    if n_classes is None:
        raise QueryError("this model is not conditional: it takes no labels", field="labels")
    if len(labels) != n:
        raise QueryError(f"give {n} labels, one per sample; got {len(labels)}", field="labels")
    bad = [label for label in labels if not 0 <= label < n_classes]
    if bad:
        raise QueryError(f"labels must be classes 0..{n_classes - 1}; got {bad[0]}", field="labels")
    return model  # type: ignore[return-value]


LABELS_DESCRIPTION = (
    "Conditional models only: the class of each sample (one per sample, 0..n_classes-1); "
    "without them a conditional model draws every class in turn (0, 1, ..., 0, 1, ...)."
)


class SamplesRequest(BaseModel):
    model_config = REQUEST

    n: int = Field(1, ge=1, le=MAX_SAMPLES, description="How many samples.")
    seed: int | None = Field(
        None, ge=0, le=2**63 - 1, description="Same seed, same samples; null for fresh ones."
    )
    latents: list[Vector] | None = Field(
        None,
        min_length=1,
        max_length=MAX_BATCH,
        description="Decode these latents (latent_dim numbers each) instead of drawing them; "
        "then `n` and `seed` are not given.",
    )
    labels: list[int] | None = Field(
        None, min_length=1, max_length=MAX_SAMPLES, description=LABELS_DESCRIPTION
    )
    generator: Which = Field("best", description=GENERATOR_DESCRIPTION)

    @model_validator(mode="after")
    def _latents_or_draws(self) -> SamplesRequest:
        if self.latents is not None and self.model_fields_set & {"n", "seed"}:
            raise ValueError("give either latents, or n and seed: not both")
        return self


SHAPE_DESCRIPTION = "The shape of one sample: [C, H, W] for images, [data_dim] for points."


class SamplesResponse(BaseModel):
    samples: list[list[float]] = Field(
        description="n rows of data_dim numbers (an image: its C*H*W pixels, channel by "
        "channel, row by row)."
    )
    sample_shape: list[int] = Field(description=SHAPE_DESCRIPTION)
    n: int
    seed: int | None


def samples(model: Generates, request: SamplesRequest) -> SamplesResponse:
    which = request.generator
    shape = list(model.sample_shape)
    if request.latents is not None:
        decoder = checked_decoder(model)
        z = observation_batch(request.latents, decoder.latent_dim, field="latents")
        conditional = checked_labels(model, request.labels, len(z))
        if conditional is not None:
            points = conditional.generate_from(z, request.labels, which=which)  # x[n, d]
        else:
            points = decoder.generate_from(z, which=which)
        return SamplesResponse(
            samples=points.tolist(), sample_shape=shape, n=len(points), seed=None
        )
    conditional = checked_labels(model, request.labels, request.n)
    if conditional is not None:
        points = conditional.generate(request.n, request.seed, request.labels, which=which)
    else:
        points = model.generate(request.n, request.seed, which=which)  # x[n, d]
    return SamplesResponse(
        samples=points.tolist(), sample_shape=shape, n=request.n, seed=request.seed
    )


def as_array(rows: list[list[float]], shape: list[int]) -> np.ndarray:
    """x[n, *sample_shape] float32: rows of flat samples in their own shape."""
    return np.asarray(rows, dtype=np.float32).reshape(-1, *shape)


def figure(rows: list[list[float]], shape: list[int], title: str, *, path: bool = False) -> bytes:
    """PNG of samples: images [C, H, W] as a grid (a path: one row), 2-D points as a scatter
    (a path: joined in order). Other samples have no picture: QueryError, so the client
    hears it asked for the wrong format (422), not that the server failed."""
    try:
        if len(shape) == 3:
            return image_grid_png(as_array(rows, shape), len(rows) if path else None)
        if shape == [2]:
            return scatter_png(as_array(rows, shape), title, path=path)
    except ValueError as exc:  # an image of 2 channels, a grid too large to draw
        raise QueryError(str(exc), field="format") from None
    raise QueryError(
        f"PNG needs images [C, H, W] or 2-D points; this model's samples have shape {shape}: "
        "ask for json or npy",
        field="format",
    )


def samples_asked(request: SamplesRequest) -> tuple[str, int]:
    """How many samples a request asks for, and the field that says so."""
    if request.latents is not None:
        return "latents", len(request.latents)
    return "n", request.n


def samples_png(response: SamplesResponse) -> bytes:
    seed = "" if response.seed is None else f", seed {response.seed}"
    return figure(response.samples, response.sample_shape, f"{response.n} samples{seed}")


def checked_decoder(model: object) -> Decodes:
    """The model, if it decodes given latents (every GAN does; a generator without latents
    would not)."""
    if not all(hasattr(model, name) for name in ("generate_from", "latents", "latent_dim")):
        raise QueryError("this model does not take latents", field="latents")
    return model  # type: ignore[return-value]


SAMPLES = Query(
    name="samples",
    summary="Draw samples from a generator",
    description="Points drawn from the learned distribution; the same seed gives the same "
    "points; a conditional model's of the requested `labels`; by the best generator of "
    "training, or the last (`generator`). In JSON, images come as rows of C*H*W pixels (the "
    "model's `sample_shape`). As .npy: an (n, *sample_shape) float32 array ((n, C, H, W) for "
    "images, (n, data_dim) for points). As PNG: a grid of the images (pixels in [-1, 1] from "
    "black to white), or a scatter of 2-D points; other samples have no PNG (422).",
    request=SamplesRequest,
    response=SamplesResponse,
    needs=("generate", "data_dim", "sample_shape"),
    run=samples,
    renderers={NPY: lambda r: npy(as_array(r.samples, r.sample_shape)), PNG: samples_png},
    examples=({"n": 4, "seed": 0},),
    asks_for=samples_asked,
)


class InterpolationsRequest(BaseModel):
    model_config = REQUEST

    seeds: list[int] | None = Field(
        None,
        min_length=2,
        max_length=2,
        description="[a, b]: walk from the latent `samples` draws for seed a (n = 1) to that "
        "of seed b.",
    )
    latents: list[Vector] | None = Field(
        None, min_length=2, max_length=2, description="[za, zb]: walk between these latents."
    )
    steps: int = Field(8, ge=2, le=256, description="Points on the way, both ends included.")
    label: int | None = Field(
        None,
        ge=0,
        description="Conditional models only: the class of every point of the walk (without "
        "it, the points take the classes in turn, as in `samples`).",
    )
    method: Literal["slerp", "linear"] = Field(
        "slerp",
        description="slerp (spherical: every point keeps the norm a Gaussian latent is likely "
        "to have; White 2016) or linear.",
    )
    generator: Which = Field("best", description=GENERATOR_DESCRIPTION)

    @model_validator(mode="after")
    def _one_pair(self) -> InterpolationsRequest:
        if (self.seeds is None) == (self.latents is None):
            raise ValueError("give exactly one of seeds or latents")
        if self.seeds is not None and not all(0 <= s <= 2**63 - 1 for s in self.seeds):
            raise ValueError("seeds must be between 0 and 2**63 - 1")
        return self


class InterpolationsResponse(BaseModel):
    samples: list[list[float]] = Field(description="steps rows of data_dim numbers, a to b.")
    sample_shape: list[int] = Field(description=SHAPE_DESCRIPTION)
    latents: list[list[float]] = Field(description="The latent of each sample.")
    steps: int
    method: str


def interpolate(za: np.ndarray, zb: np.ndarray, steps: int, method: str) -> np.ndarray:
    """z [steps, latent_dim] from za to zb, both included. Slerp follows the great circle
    between the two directions, scaling the norm linearly (Shoemake 1985; White 2016)."""
    t = np.linspace(0.0, 1.0, steps)[:, None]  # t[steps, 1]
    if method == "linear":
        return (1 - t) * za + t * zb
    norm_a, norm_b = np.linalg.norm(za), np.linalg.norm(zb)
    cosine = float(np.dot(za, zb) / max(norm_a * norm_b, 1e-12))
    omega = np.arccos(np.clip(cosine, -1.0, 1.0))
    if np.sin(omega) < 1e-6:  # (anti)parallel: no unique great circle, walk straight
        return (1 - t) * za + t * zb
    return (np.sin((1 - t) * omega) * za + np.sin(t * omega) * zb) / np.sin(omega)


def interpolations(model: Decodes, request: InterpolationsRequest) -> InterpolationsResponse:
    if request.seeds is not None:
        za, zb = (model.latents(1, seed)[0] for seed in request.seeds)
    else:
        pair = observation_batch(request.latents, model.latent_dim, field="latents")
        za, zb = pair[0].astype(np.float64), pair[1].astype(np.float64)
    z = interpolate(za, zb, request.steps, request.method)  # z[steps, latent_dim]
    labels = None if request.label is None else [request.label] * request.steps
    conditional = checked_labels(model, labels, request.steps)
    if conditional is not None:
        points = conditional.generate_from(z, labels, which=request.generator)  # x[steps, d]
    else:
        points = model.generate_from(z, which=request.generator)
    return InterpolationsResponse(
        samples=points.tolist(),
        sample_shape=list(model.sample_shape),
        latents=z.tolist(),
        steps=request.steps,
        method=request.method,
    )


def interpolations_png(response: InterpolationsResponse) -> bytes:
    title = f"{response.method} walk, {response.steps} steps"
    return figure(response.samples, response.sample_shape, title, path=True)


INTERPOLATIONS = Query(
    name="interpolations",
    summary="Walk the latent space between two points",
    description="Samples decoded from `steps` latents between two seeds' latents (or two "
    "given latents), spherically by default: how smoothly the generator maps its latent "
    "space. As .npy: a (steps, *sample_shape) float32 array. As PNG: the images in one row, "
    "a to b, or the walk through 2-D points as a path; other samples have no PNG (422).",
    request=InterpolationsRequest,
    response=InterpolationsResponse,
    needs=("latents", "generate_from", "latent_dim", "data_dim", "sample_shape"),
    run=interpolations,
    renderers={
        NPY: lambda r: npy(as_array(r.samples, r.sample_shape)),
        PNG: interpolations_png,
    },
    examples=({"seeds": [0, 1], "steps": 5}, {"latents": [[0.0, 1.0], [1.0, 0.0]], "steps": 3}),
)


class ScoresRequest(BaseModel):
    model_config = REQUEST

    samples: list[Vector] = Field(
        min_length=1, max_length=MAX_BATCH, description="Points of data_dim numbers each."
    )
    labels: list[int] | None = Field(
        None,
        min_length=1,
        max_length=MAX_BATCH,
        description="Conditional models only: the class each point is scored as (D(x | y)); "
        "without them, the classes in turn.",
    )


class ScoresResponse(BaseModel):
    scores: list[float] = Field(
        description="D(x): the probability that each point is real; for a WGAN critic its "
        "unbounded score (higher: more like the data)."
    )


def discriminator_scores(model: Discriminates, request: ScoresRequest) -> ScoresResponse:
    x = observation_batch(request.samples, model.data_dim, field="samples")  # x[n, d]
    conditional = checked_labels(model, request.labels, len(x))
    if conditional is not None:
        scores = conditional.discriminate(x, request.labels)
    else:
        scores = model.discriminate(x)
    return ScoresResponse(scores=np.asarray(scores, dtype=float).tolist())


DISCRIMINATOR = Query(
    name="discriminator",
    summary="Score points with the discriminator",
    description="The trained discriminator's D(x), the probability it gives each point of "
    "being real data (a WGAN critic's unbounded score): how a GAN's critic sees any point, "
    "real or generated.",
    request=ScoresRequest,
    response=ScoresResponse,
    needs=("discriminate", "data_dim"),
    run=discriminator_scores,
    renderers={NPY: lambda r: npy(np.asarray(r.scores, dtype=np.float32))},
    examples=({"samples": [[1.0, 0.0], [0.0, 0.0]]},),
)
# Its name until 2026-12-06, kept (deprecated) for the clients that use it.
DISCRIMINATOR_SCORES = replace(
    DISCRIMINATOR,
    name="discriminator-scores",
    summary="Score points with the discriminator (deprecated name of `discriminator`)",
    deprecated=True,
)
