"""Network builders shared by the algorithms, with a choice of activation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

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


def activation(name: str) -> nn.Module:
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
) -> nn.Sequential:
    """A fully connected stack: in -> hidden... -> out, `act` between layers."""
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers += [nn.Linear(last, width), activation(act)]
        last = width
    layers.append(nn.Linear(last, out_dim))
    if out_act is not None:
        layers.append(activation(out_act))
    return nn.Sequential(*layers)
