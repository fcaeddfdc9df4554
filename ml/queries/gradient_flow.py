"""The `gradient_flow` query: per layer, how much gradient reaches it and how saturated its
activation is, for the inputs given (or a batch of the model's own).

Where a sigmoid or tanh network stops learning, this is where it shows: the gradient
reaching the first layers is orders of magnitude below the last's, and the activations'
units sit where their derivative is nearly zero (`ml.explain.gradient_flow`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
from pydantic import BaseModel, Field
from torch import nn

from ml.explain import figures
from ml.explain.gradient_flow import SATURATION_THRESHOLD, layer_gradients
from ml.explain.targets import checked_output
from ml.queries.base import PNG, Query
from ml.queries.explanations import ExplainedInputs, explained_of, inputs_of

OWN_INPUTS = 32  # a batch of the model's own when none are given: saturation is per unit


class GradientFlowRequest(ExplainedInputs):
    output: int | None = Field(
        None,
        ge=0,
        description="The output whose mean over the inputs is back-propagated; default: each "
        "input's largest (the greedy action's Q-value).",
    )
    threshold: float = Field(
        SATURATION_THRESHOLD,
        gt=0.0,
        le=1.0,
        description="A unit is saturated when its mean |f'(x)| over the inputs is below this.",
    )


class LayerGradientPublic(BaseModel):
    name: str = Field(description="As in the model's state.")
    kind: str = Field(description="Linear, Conv2d, ReLU, Sigmoid...")
    shape: list[int] = Field(description="The layer's output for one input.")
    output_grad_norm: float = Field(description="||d objective / d output||.")
    weight_grad_norm: float | None = Field(description="||d objective / d weight|| (layers).")
    weight_norm: float | None = Field(description="||weight||, for the gradient's scale.")
    saturated_fraction: float | None = Field(
        description="Activations: the share of units whose mean |f'(x)| is below threshold."
    )
    mean_derivative: float | None = Field(description="Activations: mean |f'(x)|.")


class GradientFlowResponse(BaseModel):
    objective: str = Field(description="What was back-propagated.")
    inputs: int
    threshold: float
    layers: list[LayerGradientPublic] = Field(description="In the order of the forward pass.")


class Bound(nn.Module):
    """A conditional network with its batch's labels bound: x -> network(x, labels)."""

    def __init__(self, network: nn.Module, labels: torch.Tensor) -> None:
        super().__init__()
        self.network = network
        self.labels = labels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x, self.labels)


def gradient_flow(model: Any, request: GradientFlowRequest) -> GradientFlowResponse:
    explained = explained_of(model)
    x, labels = inputs_of(model, explained, request, own=OWN_INPUTS)
    network: nn.Module = explained.forward if labels is None else Bound(explained.forward, labels)
    with torch.no_grad():
        chosen = checked_output(explained, request.output, explained(x, labels))

    def objective(y: torch.Tensor) -> torch.Tensor:
        return y.gather(1, chosen[:, None]).mean()

    found = layer_gradients(network, x, objective, threshold=request.threshold)
    # Name the layers as the model's state does (the forward module may wrap the network).
    names = {id(m): n for n, m in explained.root.named_modules()}
    modules = dict(network.named_modules())
    layers = []
    for layer in found:
        name = names.get(id(modules[layer.name]), layer.name)
        layers.append(LayerGradientPublic(**{**asdict(layer), "name": name}))
    what = (
        explained.outputs[request.output]
        if request.output is not None
        else f"each input's largest {explained.output_label}"
        if len(explained.outputs) > 1
        else explained.outputs[0]
    )
    return GradientFlowResponse(
        objective=f"mean over the inputs of {what}",
        inputs=len(x),
        threshold=request.threshold,
        layers=layers,
    )


def gradient_flow_png(response: GradientFlowResponse) -> bytes:
    weighted = [layer for layer in response.layers if layer.weight_grad_norm is not None]
    saturation = [
        (f"{layer.name} ({layer.kind})", layer.saturated_fraction, layer.mean_derivative or 0.0)
        for layer in response.layers
        if layer.saturated_fraction is not None
    ]
    return figures.gradient_flow_png(
        [f"{layer.name} ({layer.kind})" for layer in weighted],
        [layer.weight_grad_norm or 0.0 for layer in weighted],
        saturation,
        heading=f"gradient flow of the {response.objective}, {response.inputs} inputs",
    )


GRADIENT_FLOW = Query(
    name="gradient_flow",
    summary="How much gradient reaches each layer, and how saturated each activation is",
    description="One backward pass of an output's mean over the inputs: per Linear or "
    "convolution layer the norm of the gradient at its weights, per activation the share of "
    "units saturated (mean |f'(x)| below `threshold`) and the mean |f'(x)|. Vanishing "
    "gradients (sigmoid, tanh stacks) show as norms falling by orders of magnitude towards "
    f"the input. Inputs as for `saliency`; none: {OWN_INPUTS} of the model's own. PNG: both, "
    "layer by layer.",
    request=GradientFlowRequest,
    response=GradientFlowResponse,
    needs=("explained",),
    run=gradient_flow,
    renderers={PNG: gradient_flow_png},
    examples=({}, {"observations": [[0.0, 0.1, 0.05, -0.2]], "threshold": 0.05}),
)
