"""Each layer's activations for given inputs, recorded by forward hooks on the network's
layers (`Explained.layers`): what a convolution responds to, which units a dense layer uses,
where a ReLU is dead or a sigmoid saturated (Zeiler & Fergus 2014 showed what looking at
them teaches about a convolutional network)."""

from __future__ import annotations

from typing import Any

import torch

from ml.explain.targets import Explained


def record(
    explained: Explained,
    x: torch.Tensor,
    names: list[str],
    labels: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The output of each named layer on x (one forward pass, no gradients). Hooks are
    added and removed around the pass; the network itself is not changed."""
    wanted = dict(explained.layers())
    seen: dict[str, torch.Tensor] = {}
    handles = []

    def keep(name: str) -> Any:
        def hook(_module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            seen[name] = output.detach()

        return hook

    try:
        for name in names:
            handles.append(wanted[name].register_forward_hook(keep(name)))
        with torch.no_grad():
            explained(x, labels)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def last_hidden(explained: Explained) -> str | None:
    """The layer whose output is the network's last hidden representation: the input of its
    last linear layer, i.e. the layer just before it (None for a single linear layer)."""
    layers = [name for name, _ in explained.layers()]
    linear = [n for n, m in explained.layers() if isinstance(m, torch.nn.Linear)]
    if not linear:
        return None
    position = layers.index(linear[-1])
    return layers[position - 1] if position > 0 else None
