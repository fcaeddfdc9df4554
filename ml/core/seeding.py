"""One place that turns a job's seed into every random number generator a run uses.

The library never relies on global random state it did not create: a run draws from
generators it owns (`np.random.Generator`, `torch.Generator`), each seeded from the job's seed,
so two runs in one process (or a notebook's own use of `torch.manual_seed`) do not disturb
each other, and the same seed gives the same result on the CPU.

Independent streams (the environment, evaluation episodes, the GAN's noise...) get seeds of
their own from `derived_seed`, through NumPy's `SeedSequence`, whose hashing makes the
streams of nearby seeds and stream numbers statistically independent (O'Neill 2015, "PCG").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum

import numpy as np
import torch


class Stream(IntEnum):
    """Stream numbers for `derived_seed`; a number, once used, keeps its meaning."""

    ENV = 0  # environment resets of a training run (RL)
    EVAL = 1  # evaluation episodes (RL) or evaluation noise (GAN)
    NOISE = 2  # the GAN's latent noise during training
    DEMOS = 3  # expert demonstrations (inverse RL)


def derived_seed(seed: int, stream: int, step: int = 0) -> int:
    """A 32-bit seed for one stream at one step (say, an environment restarted at `step` on
    resume), from the job's seed; different streams and steps never share a sequence."""
    sequence = np.random.SeedSequence([seed % 2**64, int(stream), step])
    return int(sequence.generate_state(1, np.uint32)[0])


def numpy_rng(seed: int) -> np.random.Generator:
    """The run's main NumPy generator (minibatch indices, exploration), seeded by the job."""
    return np.random.default_rng(seed % 2**64)


def torch_rng(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on `device` (CUDA draws on the GPU need one there)."""
    return torch.Generator(device=device).manual_seed(seed % 2**63)


@contextmanager
def seeded_torch(seed: int) -> Iterator[None]:
    """Run the block (network construction) on torch's global CPU generator seeded with
    `seed`, then put the caller's generator state back: `nn.Linear` draws its initial
    weights from the global generator, and this is how a run gets reproducible weights
    without leaving the global state changed. Build on the CPU, then move to the device."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed % 2**63)
        yield


def resolve_device(device: str | None) -> torch.device:
    """`None`/"auto" picks CUDA when present; anything else is taken as given."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
