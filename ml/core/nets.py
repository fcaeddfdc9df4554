"""Network builders and updates shared by the algorithms: MLPs, activations, Polyak averaging."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

Activation = Literal["relu", "tanh", "sigmoid", "leaky_relu", "gelu", "elu", "selu", "silu"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "silu": nn.SiLU,
}


ACTIVATION_CHOICES = (
    "relu, leaky_relu (negative slope 0.01, PyTorch's default), tanh, sigmoid, gelu, elu, "
    "selu or silu"
)
"""The `Activation` names for a config field's description, so every schema lists the same."""


def activation(name: str) -> nn.Module:
    """A fresh module for the activation `name` (one of `Activation`), with PyTorch's defaults.

    `leaky_relu` keeps `nn.LeakyReLU`'s slope of 0.01 (Maas et al. 2013, "Rectifier
    Nonlinearities Improve Neural Network Acoustic Models"): enough to keep a unit that is
    off from dying, small enough to stay close to the ReLU the defaults were tuned with. A
    network that wants another slope (DCGAN's discriminator, 0.2) builds its own module.
    """
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose from {sorted(_ACTIVATIONS)}"
        ) from None


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    act: str = "relu",
    out_act: str | None = None,
    batch_norm: bool = False,
) -> nn.Sequential:
    """A fully connected stack: in -> hidden... -> out, `act` between layers; with
    `batch_norm`, each hidden layer is Linear -> BatchNorm1d -> act (as in DCGAN)."""
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers.append(nn.Linear(last, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(activation(act))
        last = width
    layers.append(nn.Linear(last, out_dim))
    if out_act is not None:
        layers.append(activation(out_act))
    return nn.Sequential(*layers)


def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """theta^- <- tau * theta + (1 - tau) * theta^-, parameter by parameter.

    Polyak averaging of a target network (Lillicrap et al. 2016, "Continuous control with
    deep RL", Section 7); tau = 1 is DQN's hard copy (Mnih et al. 2015) and is exact, since
    `lerp` with weight 1 returns the end point. Floating-point buffers (batch-norm
    statistics) move the same way. The parameters move in one fused call (`_foreach_lerp_`,
    what PyTorch's own optimizers use): a tenth of the time of a loop over them, which counts
    when TD3 updates its targets after every gradient step.
    """
    with torch.no_grad():
        params: list[torch.Tensor] = list(target.parameters())
        online_params: list[torch.Tensor] = list(online.parameters())
        if len(params) != len(online_params):
            raise ValueError("the target and online networks differ in their parameters")
        torch._foreach_lerp_(params, online_params, tau)
        for buffer, online_buffer in zip(target.buffers(), online.buffers(), strict=True):
            if buffer.is_floating_point():
                buffer.lerp_(online_buffer, tau)
            else:
                buffer.copy_(online_buffer)
