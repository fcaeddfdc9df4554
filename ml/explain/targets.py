"""What an explanation looks at: a network of a trained model, seen as inputs -> outputs.

Saliency, Grad-CAM, activation maps, embeddings and gradient flow work the same way for a
DQN's Q-network, a TD3 critic, a GAN's discriminator or a deep IRL reward: each needs a
differentiable function from a batch of inputs x[B, *input_shape] to outputs y[B, K], the
names of those outputs, and the layers inside. A model kind offers that by exposing
`explained()`, which returns an `Explained`; the explanation code never looks at a model's
class, so a new kind that exposes its network gets every explanation without anyone listing
it here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ml.core.errors import QueryError
from ml.core.validation import observation_batch

# Layers worth showing: the ones that compute (and the activations between them), not the
# containers that hold them.
SHOWN_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv2d,
    nn.ConvTranspose2d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.ReLU,
    nn.LeakyReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.GELU,
    nn.ELU,
    nn.SELU,
    nn.SiLU,
)


@dataclass(frozen=True)
class Explained:
    """One network to explain.

    `forward(x)` (a module, so a deep copy of the whole copies the layers it runs, once)
    maps inputs x[B, *input_shape] (float32, on the CPU) to outputs y[B, K],
    with whatever the model does around its network included (a reward network's
    standardisation of features, a critic evaluated at its actor's action), so an
    attribution is with respect to what the client sent. `root` holds the layers, named as
    in the model's own state (`layers()`); `input_field` is the request field the inputs
    come in (observations, samples, features); `outputs` names each of the K outputs
    (action names, "D(x)", "reward"); `output_label` says what they are, for titles.
    `classes`: a conditional network (a cGAN's discriminator) also takes labels[B] in
    0..classes-1, passed as `forward(x, labels)`.
    """

    forward: nn.Module
    root: nn.Module
    input_shape: tuple[int, ...]
    input_field: str
    outputs: tuple[str, ...]
    output_label: str
    classes: int | None = None
    input_names: tuple[str, ...] | None = field(default=None)

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3

    def layers(self) -> list[tuple[str, nn.Module]]:
        """The layers that compute, in the order they were defined (for the networks here,
        the order they run), with their names in the model's state."""
        return [(name, m) for name, m in self.root.named_modules() if isinstance(m, SHOWN_LAYERS)]

    def layer(
        self, name: str | None, *, kinds: tuple[type[nn.Module], ...] = SHOWN_LAYERS
    ) -> tuple[str, nn.Module]:
        """The layer called `name`, or (None) the last layer of `kinds`; QueryError naming
        `layer` with the choices otherwise."""
        candidates = [(n, m) for n, m in self.layers() if isinstance(m, kinds)]
        if not candidates:
            what = ", ".join(k.__name__ for k in kinds)
            raise QueryError(f"this model's network has no {what} layer", field="layer")
        if name is None:
            return candidates[-1]
        for n, m in candidates:
            if n == name:
                return n, m
        raise QueryError(
            f"no layer {name!r} here; choose from {', '.join(n for n, _ in candidates)}",
            field="layer",
        )

    def inputs(self, rows: Sequence[Sequence[float]] | np.ndarray, field_name: str) -> torch.Tensor:
        """x[B, *input_shape] float32 from rows of input_size numbers (an image flattened
        channel by channel, row by row); QueryError naming the field (and the row) when one
        does not fit."""
        if isinstance(rows, np.ndarray) and rows.ndim == 2 and rows.shape[1] == self.input_size:
            array = rows.astype(np.float32)
        else:
            listed = rows.tolist() if isinstance(rows, np.ndarray) else list(rows)
            array = observation_batch(listed, self.input_size, field=field_name)
        return torch.from_numpy(np.ascontiguousarray(array)).reshape(-1, *self.input_shape)

    def labels(self, labels: Sequence[int] | None, n: int) -> torch.Tensor | None:
        """labels[n] int64 for a conditional network (the given ones, or every class in
        turn); None for a network that takes none (QueryError if some are given)."""
        if self.classes is None:
            if labels is not None:
                raise QueryError(
                    "this model is not conditional: it takes no labels", field="labels"
                )
            return None
        if labels is None:
            return torch.arange(n, dtype=torch.int64) % self.classes
        if len(labels) != n:
            raise QueryError(f"give {n} labels, one per input; got {len(labels)}", field="labels")
        bad = [y for y in labels if not 0 <= y < self.classes]
        if bad:
            raise QueryError(
                f"labels must be classes 0..{self.classes - 1}; got {bad[0]}", field="labels"
            )
        return torch.as_tensor(list(labels), dtype=torch.int64)

    def __call__(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward(x) if labels is None else self.forward(x, labels)


class Reshaped(nn.Module):
    """A network that takes flat rows x[B, D], fed inputs in their own shape [B, *shape]."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        return self.network(x.reshape(len(x), -1), *args)


def output_names(count: int, names: Sequence[str] | None, single: str) -> tuple[str, ...]:
    """Names of K outputs: the given ones when they fit, `single` for one output, else
    "output i"."""
    if names is not None and len(names) == count:
        return tuple(names)
    if count == 1:
        return (single,)
    return tuple(f"output {i}" for i in range(count))


def checked_output(explained: Explained, output: int | None, y: torch.Tensor) -> torch.Tensor:
    """Which output each input's attribution is of: the given index (QueryError naming
    `output` when out of range), else each input's largest (a Q-network's greedy action)."""
    k = len(explained.outputs)
    if output is not None:
        if not 0 <= output < k:
            raise QueryError(
                f"output must be 0..{k - 1} ({', '.join(explained.outputs)}); got {output}",
                field="output",
            )
        return torch.full((len(y),), output, dtype=torch.int64)
    return y.argmax(dim=1)
