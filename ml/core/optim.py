"""Optimizers built one way for every algorithm: Adam, fused where the device has the kernel.

PyTorch's fused Adam updates every parameter in one kernel instead of a handful of small
ones per tensor; for the small networks trained here that is about 2.5x faster on the CPU as
well as on CUDA. It is numerically the same algorithm (Kingma & Ba 2015), so whether a device
gets it is a speed question only.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

try:  # the list PyTorch itself consults; private, so fall back to the common devices
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    FUSED_DEVICES = frozenset(_get_fused_kernels_supported_devices())
except ImportError:  # pragma: no cover - depends on the torch version
    FUSED_DEVICES = frozenset({"cpu", "cuda"})


def adam(
    params: Iterable[torch.nn.Parameter],
    *,
    lr: float,
    device: torch.device,
    betas: tuple[float, float] = (0.9, 0.999),
) -> torch.optim.Adam:
    """Adam over `params` (already on `device`), fused when `device` supports it."""
    fused = device.type in FUSED_DEVICES
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused or None)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's step size (a schedule's value for this step)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
