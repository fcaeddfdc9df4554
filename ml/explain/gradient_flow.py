"""How the gradient flows back through a network, layer by layer, and where it is lost.

One backward pass of a scalar objective (the mean of the network's outputs unless another is
given) yields, for every Linear and convolution layer in the order the forward pass ran
them, the L2 norm of the gradient reaching its weight and its output; and, for every
elementwise activation, how many of its units are saturated and the mean |f'(x)| over them.

Why: a gradient is multiplied, on its way to the input, by each layer's weights and by each
activation's derivative (Hochreiter 1991; Glorot & Bengio 2010, "Understanding the difficulty
of training deep feedforward neural networks"). Sigmoid's derivative is at most 1/4, so in a
deep stack the gradient reaching the first layers can be orders of magnitude smaller than at
the last with no unit saturated (tests/ml/explain/test_activations.py measures 1e-5 for six
layers at PyTorch's default initialisation, against 0.1 with ReLU); tanh's is 1 at the
origin and loses the gradient where its units saturate, as sigmoid's do once trained too
hard. ReLU passes the gradient unchanged where it is active (Glorot, Bordes & Bengio 2011,
"Deep Sparse Rectifier Neural Networks"), but a unit whose input stays negative passes none
("dead").

A unit (one number of an activation's output for one input: a neuron of a dense layer, a
channel at one position of a convolution's) is saturated when its |f'(x)|, averaged over the
batch's inputs x, is below `threshold` (0.05 by default; for one input, sigmoid beyond
|x| > 2.9, tanh beyond |x| > 2.2, ELU below x < -3): it passes almost no gradient back for
these inputs. Averaging over the inputs first matters for rectifiers: a ReLU is off (f' = 0)
for about half of the inputs by design, which is sparsity, not saturation (Glorot, Bordes
& Bengio 2011); a unit off for (nearly) every input is dead, and counts as saturated. f' is
taken by autograd of the activation module itself at x, so the test is the same for every
activation, with these consequences worth knowing:
- a ReLU has f'(0) = 0 (PyTorch's choice), and f' = 0 below: a dead ReLU is saturated;
- LeakyReLU's negative side has f' = its slope: with PyTorch's 0.01 it counts as saturated at
  the default threshold, with DCGAN's 0.2 it does not;
- GELU and SiLU have f' = 0 at their minimum (x = -0.75 and x = -1.28): units near it count
  too, and rightly so for gradient flow, as they pass almost no gradient.

The network is shared (a cached model answers other requests), so nothing here changes it:
hooks are removed, gradients are taken with `torch.autograd.grad` so no parameter's `.grad`
is touched, parameters are never written, buffers (batch norm's running statistics, which a
forward pass in train mode updates) are put back, and the train/eval mode is left as it was:
the caller chooses it (eval for a trained model's behaviour).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

SATURATION_THRESHOLD = 0.05

PARAMETRIC: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.GELU,
    nn.ELU,
    nn.SELU,
    nn.SiLU,
    nn.CELU,
    nn.Softplus,
    nn.Mish,
    nn.ReLU6,
    nn.Hardtanh,
)

Objective = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class LayerGradient:
    """One layer of the backward pass; every field is a plain str, int, float or None.

    `weight_grad_norm` and `weight_norm` are set for Linear and convolution layers,
    `saturated_fraction` and `mean_derivative` (mean |f'(x)|) for activations. Norms are of
    the whole batch's gradient, so they scale with the objective (a mean over the batch
    shrinks them as 1/B): compare layers of one call, not calls.
    """

    name: str  # as in `network.named_modules()`
    kind: str  # the module's class: Linear, Conv2d, ReLU, ...
    shape: list[int]  # the output of one input, e.g. [32] or [16, 8, 8]
    output_grad_norm: float  # ||d objective / d output||_2 (0 when it does not reach it)
    weight_grad_norm: float | None = None  # ||d objective / d weight||_2
    weight_norm: float | None = None  # ||weight||_2, for the gradient's relative size
    saturated_fraction: float | None = None  # units whose mean |f'(x)| < threshold
    mean_derivative: float | None = None  # mean |f'(x)| over the batch and the units


@dataclass
class _Call:
    """A watched module's first call: its output (in the graph), its input when it is an
    activation (detached), and after the backward pass the objective's gradients."""

    module: nn.Module
    output: torch.Tensor
    input: torch.Tensor | None
    output_grad: torch.Tensor | None = None
    weight_grad: torch.Tensor | None = None

    @property
    def weight(self) -> torch.Tensor | None:
        weight = getattr(self.module, "weight", None)
        parametric = isinstance(self.module, PARAMETRIC) and isinstance(weight, torch.Tensor)
        return weight if parametric else None


def layer_gradients(
    network: nn.Module,
    inputs: torch.Tensor,
    objective: Objective | None = None,
    *,
    threshold: float = SATURATION_THRESHOLD,
) -> list[LayerGradient]:
    """Per Linear/convolution layer and per elementwise activation, in the order of the
    forward pass, the gradient of `objective(network(inputs))` (a scalar; by default the mean
    of the outputs) at its output and weight, and for activations their saturation (see the
    module's docstring). A module called more than once in the pass is reported for its
    first call. An in-place activation (`inplace=True`) overwrites the output of the layer
    before it, whose output gradient is then the one after the activation. The network is
    left exactly as it was."""
    calls = _backward(network, inputs, objective)
    return [_layer(name, call, threshold) for name, call in calls.items()]


def _backward(
    network: nn.Module, inputs: torch.Tensor, objective: Objective | None
) -> dict[str, _Call]:
    """One forward pass with hooks on the watched modules, one backward pass of the
    objective to their outputs and weights; the calls by module name, in forward order."""
    calls: dict[str, _Call] = {}
    seen_inputs: dict[str, torch.Tensor] = {}

    def pre_hook_for(name: str) -> Callable[[nn.Module, tuple[object, ...]], None]:
        def pre_hook(module: nn.Module, args: tuple[object, ...]) -> None:
            # Before the call, and copied when the activation works in place: its input is
            # then overwritten by its output.
            if name not in seen_inputs and args and isinstance(args[0], torch.Tensor):
                x = args[0].detach()
                seen_inputs[name] = x.clone() if getattr(module, "inplace", False) else x

        return pre_hook

    def hook_for(name: str) -> Callable[[nn.Module, tuple[object, ...], object], None]:
        def hook(module: nn.Module, args: tuple[object, ...], output: object) -> None:
            if name not in calls and isinstance(output, torch.Tensor):
                calls[name] = _Call(module, output, seen_inputs.get(name))

        return hook

    watched = [
        (n, m) for n, m in network.named_modules() if isinstance(m, PARAMETRIC + ELEMENTWISE)
    ]
    buffers = [(b, b.detach().clone()) for b in network.buffers()]
    handles = [module.register_forward_hook(hook_for(name)) for name, module in watched]
    handles += [
        module.register_forward_pre_hook(pre_hook_for(name))
        for name, module in watched
        if isinstance(module, ELEMENTWISE)
    ]
    try:
        with torch.enable_grad():
            x = inputs.detach()
            if x.is_floating_point():
                x = x.clone().requires_grad_(True)  # the graph exists even if all is frozen
            y = network(x)
            score = y.mean() if objective is None else objective(y)
            if score.numel() != 1 or not score.requires_grad:
                raise ValueError("the objective must be a scalar that depends on the network")
            # Frozen weights, and outputs computed from nothing that requires a gradient, are
            # not in the graph: their gradient is reported as zero.
            tensors = [t for c in calls.values() for t in (c.output, c.weight) if t is not None]
            asked = [t for t in tensors if t.requires_grad]
            found = torch.autograd.grad(score, asked, allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
    gradients = {id(t): g for t, g in zip(asked, found, strict=True) if g is not None}
    for call in calls.values():
        call.output_grad = _gradient_of(call.output, gradients)
        if call.weight is not None:
            call.weight_grad = _gradient_of(call.weight, gradients)
    return calls


def _gradient_of(tensor: torch.Tensor, gradients: dict[int, torch.Tensor]) -> torch.Tensor:
    found = gradients.get(id(tensor))
    return torch.zeros_like(tensor) if found is None else found.detach()


def derivative(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """f'(x) of an elementwise activation module, unit by unit: the gradient of sum f(x),
    whose k-th component is f'(x_k) because f acts on each unit alone."""
    with torch.enable_grad():
        z = x.detach().clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(module(z).sum(), z)
    return gradient


def _norm(tensor: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(tensor.double()))


def _layer(name: str, call: _Call, threshold: float) -> LayerGradient:
    assert call.output_grad is not None
    weight_grad_norm = weight_norm = saturated = mean_derivative = None
    if call.weight is not None:
        assert call.weight_grad is not None
        weight_grad_norm, weight_norm = _norm(call.weight_grad), _norm(call.weight.detach())
    if call.input is not None:
        slope = derivative(call.module, call.input).abs().double()  # |f'(x)|[B, *shape]
        per_unit = slope.mean(dim=0) if slope.dim() > 1 else slope  # [*shape]
        saturated = float((per_unit < threshold).double().mean())
        mean_derivative = float(slope.mean())
    return LayerGradient(
        name=name,
        kind=type(call.module).__name__,
        shape=[int(d) for d in call.output.shape[1:]],
        output_grad_norm=_norm(call.output_grad),
        weight_grad_norm=weight_grad_norm,
        weight_norm=weight_norm,
        saturated_fraction=saturated,
        mean_derivative=mean_derivative,
    )
