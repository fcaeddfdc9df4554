"""Datasets the generative models learn from.

Each dataset has a pure sampling function (numpy in, numpy out, randomness from an explicit
`np.random.Generator`) and a pydantic spec that a job's config embeds. The specs carry a
`kind` tag, so `DatasetSpec` is a discriminated union: adding a dataset means adding one
spec class to the union, and every config that embeds `DatasetSpec` accepts it without
other changes. Besides the ring, a user's own points (`ml.data.UploadedDataset`, a `samples`
dataset of rows `x[N, d]`) are drawn from by `ArraySamples`; `real_data` turns either spec
into something with `data_dim` and `sample(n, rng)`.

The 2-D ring of Gaussians is the standard mode-collapse benchmark: Metz et al. 2017
("Unrolled Generative Adversarial Networks") and Lin et al. 2018 ("PacGAN: The power of two
samples in generative adversarial networks"), whose set-up (8 modes on the unit circle,
standard deviation 0.01) is the default here.
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
    if rng is None:
        rng = np.random.default_rng()
    means = ring_means(n_modes, radius)
    modes = rng.integers(0, n_modes, size=n)
    points = means[modes] + std * rng.standard_normal((n, 2))
    return points.astype(np.float32)


class RingDataset(BaseModel):
    """A mixture of `n_modes` Gaussians evenly spaced on a circle (the GAN mode-collapse test)."""

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


# The datasets a generative model can be trained on, told apart by `kind`.
DatasetSpec = Annotated[RingDataset | UploadedDataset, Field(discriminator="kind")]


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


def real_data(spec: RingDataset | UploadedDataset, datasets: Mapping[str, Any] | None) -> RealData:
    """The sampler a config's `dataset` names; uploaded data is looked up in `datasets`."""
    if isinstance(spec, UploadedDataset):
        return ArraySamples(resolve(spec, datasets, "samples").arrays["x"])
    return spec
