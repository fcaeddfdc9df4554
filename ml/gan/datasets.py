"""Datasets the generative models learn from.

Each dataset has a pure sampling function (numpy in, numpy out, randomness from an explicit
`np.random.Generator`) and a pydantic spec that a job's config embeds. The specs carry a
`kind` tag, so `DatasetSpec` is a discriminated union: adding a dataset means adding one
spec class to the union, and every config that embeds `DatasetSpec` accepts it without
other changes (and the datasets resource lists it as a built-in). Besides the built-in 2-D
sets, a user's own points (`ml.data.UploadedDataset`, a `samples`
dataset of rows `x[N, d]`) are drawn from by `ArraySamples`; `real_data` turns either spec
into something with `data_dim` and `sample(n, rng)`.

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
from pydantic import BaseModel, ConfigDict, Field

from ml.core.errors import ConfigError
from ml.data import UploadedDataset, resolve


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


# The built-in sets with known modes, judged by mode coverage.
Mixture = RingDataset | GridDataset
BuiltinDataset = RingDataset | GridDataset | SwissRollDataset

# The datasets a generative model can be trained on, told apart by `kind`.
DatasetSpec = Annotated[
    RingDataset | GridDataset | SwissRollDataset | UploadedDataset, Field(discriminator="kind")
]


class RealData(Protocol):
    """Where real samples come from during training."""

    @property
    def data_dim(self) -> int: ...

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray: ...


class ArraySamples:
    """Rows of an uploaded `samples` dataset, drawn uniformly with replacement."""

    def __init__(self, x: np.ndarray) -> None:
        x = np.asarray(x)
        if x.ndim != 2 or len(x) == 0 or x.shape[1] == 0:
            raise ConfigError(
                f"a samples dataset needs x of shape [N, d] with N, d >= 1, got {x.shape}",
                field="dataset",
            )
        self.x = x.astype(np.float32)  # x[i, d]

    @property
    def data_dim(self) -> int:
        return int(self.x.shape[1])

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.x[rng.integers(0, len(self.x), size=n)]  # [n, d]


def real_data(
    spec: BuiltinDataset | UploadedDataset, datasets: Mapping[str, Any] | None
) -> RealData:
    """The sampler a config's `dataset` names; uploaded data is looked up in `datasets`."""
    if isinstance(spec, UploadedDataset):
        return ArraySamples(resolve(spec, datasets, "samples").arrays["x"])
    return spec
