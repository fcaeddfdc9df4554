"""Datasets the generative models learn from.

Each dataset has a pure sampling function (numpy in, numpy out, randomness from an explicit
`np.random.Generator`) and a pydantic spec that a job's config embeds. The specs carry a
`kind` tag, so `DatasetSpec` is a discriminated union: adding a dataset means adding one
spec class to the union, and every config that embeds `DatasetSpec` accepts it without
other changes (and the datasets resource lists it as a built-in). Besides the built-in 2-D
sets and scikit-learn's 8x8 `digits` (images with labels, `ml.gan.digits`), a user's own
samples (`ml.data.UploadedDataset`, a `samples` dataset of vectors `x[N, d]` or images
`x[N, C, H, W]`, optionally labelled `y[N]`) are drawn from by `ArraySamples`; `real_data`
turns any spec into a `RealData`: flat rows x[n, data_dim], their `sample_shape`, and labels
when the data has them.

The built-in 2-D sets are the standard mode-collapse benchmarks of Metz et al. 2017
("Unrolled Generative Adversarial Networks") and Lin et al. 2018 ("PacGAN: The power of two
samples in generative adversarial networks"), with PacGAN's parameters as defaults:

- `ring` ("ring8"): 8 Gaussians with means on the unit circle, standard deviation 0.01;
- `grid` ("grid25"): 25 Gaussians with means on {-4, -2, 0, 2, 4}^2, standard deviation 0.05;
- `swissroll`: scikit-learn's `make_swiss_roll(noise=0.25)` projected on its (x, z) plane
  and divided by 7.5, as in the toy experiments of Gulrajani et al. 2017 (WGAN-GP); it has
  no modes, so it is judged by the MMD to fresh samples (`ml.gan.metrics.mmd_rbf`).

`RingDataset` and `GridDataset` are `Mixture`s (`means()`, `std`, `n_modes`), judged by
`ml.gan.metrics.mode_coverage`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ml.core.errors import ConfigError
from ml.data import UploadedDataset, resolve
from ml.gan.digits import load_digits_dataset


def ring_means(n_modes: int = 8, radius: float = 1.0) -> np.ndarray:
    """The (n_modes, 2) mode centres, at angles 2*pi*i/n_modes on the circle of `radius`."""
    if n_modes < 1:
        raise ValueError(f"n_modes must be at least 1, got {n_modes}")
    angles = 2.0 * np.pi * np.arange(n_modes) / n_modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sample_ring(
    n: int,
    n_modes: int = 8,
    radius: float = 1.0,
    std: float = 0.01,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """`n` points from an equal-weight mixture of isotropic Gaussians on a ring, (n, 2) float32.

    Each point picks a mode uniformly, then adds Gaussian noise of `std` per coordinate.
    """
    return sample_mixture(n, ring_means(n_modes, radius), std, rng)


class RingDataset(BaseModel):
    """A mixture of `n_modes` Gaussians evenly spaced on a circle (the GAN mode-collapse test);
    the defaults are PacGAN's 'ring8' (8 means on the unit circle, std 0.01)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ring"] = Field("ring", description="Dataset tag: a ring of Gaussians.")
    n_modes: int = Field(8, ge=2, le=64, description="Number of Gaussians on the ring.")
    radius: float = Field(1.0, ge=0.1, le=100.0, description="Radius of the ring.")
    std: float = Field(
        0.01, ge=1e-4, le=1.0, description="Standard deviation of each Gaussian, per coordinate."
    )

    @property
    def data_dim(self) -> int:
        return 2

    def means(self) -> np.ndarray:
        return ring_means(self.n_modes, self.radius)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return sample_ring(n, self.n_modes, self.radius, self.std, rng)


def grid_means(side: int = 5, spacing: float = 2.0) -> np.ndarray:
    """The (side^2, 2) mode centres of a square grid centred on 0, row by row; for side 5
    and spacing 2, PacGAN's {-4, -2, 0, 2, 4}^2."""
    if side < 1:
        raise ValueError(f"side must be at least 1, got {side}")
    axis = (np.arange(side) - (side - 1) / 2.0) * spacing  # axis[i]
    xs, ys = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def sample_mixture(
    n: int, means: np.ndarray, std: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    """`n` points from an equal-weight mixture of isotropic Gaussians of `std` around
    `means` (k, d): each point picks a mode uniformly, then adds noise. (n, d) float32."""
    if rng is None:
        rng = np.random.default_rng()
    modes = rng.integers(0, len(means), size=n)
    points = means[modes] + std * rng.standard_normal((n, means.shape[1]))
    return points.astype(np.float32)


class GridDataset(BaseModel):
    """A square grid of Gaussians; the defaults are PacGAN's 'grid25' (means on
    {-4, -2, 0, 2, 4}^2, std 0.05)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["grid"] = Field("grid", description="Dataset tag: a grid of Gaussians.")
    side: int = Field(5, ge=2, le=8, description="Gaussians per row and column (side^2 modes).")
    spacing: float = Field(2.0, ge=0.1, le=100.0, description="Distance between neighbours.")
    std: float = Field(
        0.05, ge=1e-4, le=1.0, description="Standard deviation of each Gaussian, per coordinate."
    )

    @property
    def data_dim(self) -> int:
        return 2

    @property
    def n_modes(self) -> int:
        return self.side * self.side

    def means(self) -> np.ndarray:
        return grid_means(self.side, self.spacing)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return sample_mixture(n, self.means(), self.std, rng)


SWISSROLL_SCALE = 7.5  # WGAN-GP's toy experiments divide the roll by it, to about [-2, 2]^2


def sample_swissroll(
    n: int, noise: float = 0.25, rng: np.random.Generator | None = None
) -> np.ndarray:
    """`n` points of scikit-learn's `make_swiss_roll(n, noise)` on its (x, z) plane, divided
    by `SWISSROLL_SCALE`: t = 1.5 pi (1 + 2u), u ~ U(0, 1), point = (t cos t, t sin t) plus
    N(0, noise^2) per coordinate. (n, 2) float32."""
    if rng is None:
        rng = np.random.default_rng()
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.random(n))  # t[n]
    points = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) + noise * rng.standard_normal((n, 2))
    return (points / SWISSROLL_SCALE).astype(np.float32)


class SwissRollDataset(BaseModel):
    """A 2-D swiss roll (scikit-learn's, as in the WGAN-GP toy experiments), a continuous
    manifold without modes."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["swissroll"] = Field("swissroll", description="Dataset tag: a swiss roll.")
    noise: float = Field(
        0.25, ge=0.0, le=5.0, description="Standard deviation of the noise before scaling."
    )

    @property
    def data_dim(self) -> int:
        return 2

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return sample_swissroll(n, self.noise, rng)


class DigitsDataset(BaseModel):
    """scikit-learn's 8x8 handwritten digits (`ml.gan.digits`), images [1, 8, 8] in [-1, 1]
    with their labels 0-9; judged by the digits classifier's metrics (`eval/fd_digits`, ...)
    against the held-out split."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["digits"] = Field("digits", description="Dataset tag: 8x8 digits.")
    split: Literal["train", "all"] = Field(
        "train",
        description="train: the 1,437 images the evaluation's held-out 360 are not among; "
        "all: all 1,797.",
    )

    @property
    def data_dim(self) -> int:
        return 64


# The built-in sets with known modes, judged by mode coverage.
Mixture = RingDataset | GridDataset
BuiltinDataset = RingDataset | GridDataset | SwissRollDataset | DigitsDataset

# The names the literature gives the built-in sets (PacGAN's "ring8" and "grid25"), accepted
# as a dataset's kind, or alone in place of the whole spec: {"dataset": "grid25"}.
NAMED_SETS: dict[str, dict[str, Any]] = {
    "ring8": {"kind": "ring"},
    "grid25": {"kind": "grid"},
    "ring": {"kind": "ring"},
    "grid": {"kind": "grid"},
    "swissroll": {"kind": "swissroll"},
    "digits": {"kind": "digits"},
}


def named_set(value: Any) -> Any:
    """A built-in set's name ("grid25"), or a spec whose kind is one ({"kind": "ring8"}), as
    the spec it stands for; anything else unchanged, for the union to judge."""
    if isinstance(value, str):
        if value not in NAMED_SETS:
            raise ValueError(
                f"unknown dataset {value!r}: name one of {', '.join(NAMED_SETS)}, or give an "
                'object with its kind ({"kind": "uploaded", "id": ...} for your own)'
            )
        return dict(NAMED_SETS[value])
    if isinstance(value, dict) and value.get("kind") in ("ring8", "grid25"):
        return {**value, **NAMED_SETS[value["kind"]]}
    return value


# The datasets a generative model can be trained on, told apart by `kind`.
DatasetSpec = Annotated[
    RingDataset | GridDataset | SwissRollDataset | DigitsDataset | UploadedDataset,
    Field(discriminator="kind"),
    BeforeValidator(named_set),
]


class RealData(Protocol):
    """Where real samples come from during training: flat rows x[n, data_dim] (an image is
    its C*H*W pixels, channel by channel, row by row), of `sample_shape` once reshaped, and
    labels in 0..n_classes-1 when the data has them."""

    @property
    def data_dim(self) -> int: ...

    @property
    def sample_shape(self) -> tuple[int, ...]: ...

    @property
    def n_classes(self) -> int | None: ...

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray: ...

    def sample_labelled(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """x[n, data_dim] and their labels y[n] int64 (only when `n_classes` is set)."""
        ...


class Points:
    """A built-in 2-D set as `RealData`: unlabelled points."""

    def __init__(self, spec: RingDataset | GridDataset | SwissRollDataset) -> None:
        self.spec = spec

    @property
    def data_dim(self) -> int:
        return self.spec.data_dim

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.spec.data_dim,)

    @property
    def n_classes(self) -> int | None:
        return None

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.spec.sample(n, rng)

    def sample_labelled(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        raise ConfigError("this dataset has no labels", field="dataset")


class ArraySamples:
    """Samples x[N, ...] (vectors [N, d], grey images [N, H, W] or images [N, C, H, W]) and
    optional labels y[N], kept as flat rows and drawn uniformly with replacement."""

    def __init__(self, x: np.ndarray, y: np.ndarray | None = None) -> None:
        x = np.asarray(x)
        if x.ndim < 2 or x.ndim > 4 or len(x) == 0 or 0 in x.shape[1:]:
            raise ConfigError(
                "a samples dataset needs x of shape [N, d], [N, H, W] or [N, C, H, W] with "
                f"every size >= 1, got {x.shape}",
                field="dataset",
            )
        shape = tuple(int(d) for d in x.shape[1:])
        self._shape = (1, *shape) if len(shape) == 2 else shape  # [H, W] is one grey channel
        self.x = x.reshape(len(x), -1).astype(np.float32)  # x[i, d]
        self.y = None if y is None else np.asarray(y, dtype=np.int64).reshape(-1)  # y[i]
        if self.y is not None and len(self.y) != len(x):
            raise ConfigError("a samples dataset needs one label per sample", field="dataset")

    @property
    def data_dim(self) -> int:
        return int(self.x.shape[1])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def n_classes(self) -> int | None:
        return None if self.y is None or len(self.y) == 0 else int(self.y.max()) + 1

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.x[rng.integers(0, len(self.x), size=n)]  # [n, d]

    def sample_labelled(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if self.y is None:
            raise ConfigError(
                "conditional training needs labels: this samples dataset has no y",
                field="dataset",
            )
        index = rng.integers(0, len(self.x), size=n)
        return self.x[index], self.y[index]  # [n, d], [n]


def real_data(
    spec: BuiltinDataset | UploadedDataset, datasets: Mapping[str, Any] | None
) -> RealData:
    """The sampler a config's `dataset` names; uploaded data is looked up in `datasets`."""
    if isinstance(spec, UploadedDataset):
        arrays = resolve(spec, datasets, "samples").arrays
        return ArraySamples(arrays["x"], arrays.get("y"))
    if isinstance(spec, DigitsDataset):
        digits = load_digits_dataset(spec.split)
        return ArraySamples(digits.images, digits.labels)
    return Points(spec)
