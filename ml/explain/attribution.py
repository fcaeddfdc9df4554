"""Which inputs drive an output: gradients, integrated gradients, Grad-CAM, and the model
randomisation test that says whether a map means anything.

- Gradients (Simonyan et al. 2014, "Deep Inside Convolutional Networks"): dy/dx at the
  input; cheap, local, and noisy.
- Integrated gradients (Sundararajan et al. 2017, "Axiomatic Attribution for Deep
  Networks"): the path integral of the gradient from a baseline (zeros) to the input,
  whose attributions add up to y(x) - y(baseline) (completeness); the answer reports how far
  the Riemann sum is from that, per input.
- Grad-CAM (Selvaraju et al. 2017): a convolution layer's channels weighted by the mean
  gradient of the output over each channel, summed and rectified, then upsampled to the
  input: where in an image the output's evidence is.
- Model randomisation (Adebayo et al. 2018, "Sanity Checks for Saliency Maps"): re-draw the
  network's weights layer by layer from the top (cascading) and compare each map with the
  trained network's by rank correlation. A map that stays the same while the weights are
  noise describes the input, not the model.

All are computed by captum, imported when first used (it takes a second, and every API and
worker process imports this module). Nothing here changes the network, which other requests
share: the randomisation test works on a deep copy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from ml.explain.targets import Explained, checked_output

Method = Literal["gradients", "integrated_gradients"]
PARAMETRIC = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding)


@dataclass(frozen=True)
class Attribution:
    """Per input: the output explained (its index), its value, and the attribution a[B,
    *input_shape]; `delta`: integrated gradients' completeness error per input."""

    outputs: np.ndarray  # [B] int
    values: np.ndarray  # [B]
    maps: np.ndarray  # [B, *input_shape]
    delta: np.ndarray | None  # [B]


def _forward_args(labels: torch.Tensor | None) -> tuple[torch.Tensor, ...] | None:
    return None if labels is None else (labels,)


def outputs_of(
    explained: Explained, x: torch.Tensor, labels: torch.Tensor | None, output: int | None
) -> tuple[torch.Tensor, np.ndarray]:
    """Which output each input is explained by (`checked_output`) and its value."""
    with torch.no_grad():
        y = explained(x, labels)  # y[B, K]
    chosen = checked_output(explained, output, y)
    return chosen, y.gather(1, chosen[:, None])[:, 0].double().numpy()


def attribute(
    explained: Explained,
    x: torch.Tensor,
    *,
    method: Method,
    output: int | None = None,
    labels: torch.Tensor | None = None,
    steps: int = 32,
) -> Attribution:
    """The attribution of each input's chosen output to each of its numbers (signed)."""
    chosen, values = outputs_of(explained, x, labels, output)
    maps, delta = _maps(explained, x, chosen, method, labels, steps)
    return Attribution(chosen.numpy(), values, maps, delta)


def _maps(
    explained: Explained,
    x: torch.Tensor,
    target: torch.Tensor,
    method: Method,
    labels: torch.Tensor | None,
    steps: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    """a[B, *input_shape] of output target[b] of each input, and integrated gradients'
    completeness error per input (None for gradients)."""
    from captum.attr import IntegratedGradients, Saliency

    inputs = x.clone().requires_grad_(True)
    args = _forward_args(labels)
    if method == "gradients":
        maps = Saliency(explained.forward).attribute(
            inputs, target=target, abs=False, additional_forward_args=args
        )
        return maps.detach().double().numpy(), None
    maps, deltas = IntegratedGradients(explained.forward).attribute(
        inputs,
        baselines=torch.zeros_like(x),
        target=target,
        additional_forward_args=args,
        n_steps=steps,
        method="gausslegendre",
        return_convergence_delta=True,
    )
    return maps.detach().double().numpy(), deltas.detach().double().numpy()


def grad_cam(
    explained: Explained,
    x: torch.Tensor,
    layer: nn.Module,
    *,
    output: int | None = None,
    labels: torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """(outputs [B], values [B], maps [B, H, W] at the input's resolution, each scaled to
    [0, 1] by its own maximum (all zero where no evidence is positive), and the layer's own
    resolution)."""
    from captum.attr import LayerAttribution, LayerGradCam

    chosen, values = outputs_of(explained, x, labels, output)
    cam = LayerGradCam(explained.forward, layer).attribute(
        x, target=chosen, additional_forward_args=_forward_args(labels), relu_attributions=True
    )  # [B, 1, h, w]
    coarse = (int(cam.shape[-2]), int(cam.shape[-1]))
    height, width = explained.input_shape[-2:]
    fine = LayerAttribution.interpolate(cam, (height, width), interpolate_mode="bilinear")
    maps = fine[:, 0].detach().double().numpy()  # [B, H, W]
    peak = maps.reshape(len(maps), -1).max(axis=1)
    scaled = np.where(peak[:, None, None] > 0, maps / np.maximum(peak, 1e-300)[:, None, None], 0.0)
    return chosen.numpy(), values, scaled, coarse


@dataclass(frozen=True)
class RandomisedLayer:
    """After re-drawing the weights of `layer` and every layer above it: the rank
    correlation of |map| with the trained network's, averaged over the inputs."""

    layer: str
    rank_correlation: float


def randomisation_test(
    explained: Explained,
    x: torch.Tensor,
    trained: Attribution,
    *,
    method: Method,
    labels: torch.Tensor | None = None,
    steps: int = 32,
    seed: int = 0,
) -> list[RandomisedLayer]:
    """Adebayo et al.'s cascading model-parameter randomisation, top layer first, on a deep
    copy of the network; the same outputs are explained as for the trained network."""
    copied = copy.deepcopy(explained)
    layers = [(n, m) for n, m in copied.root.named_modules() if isinstance(m, PARAMETRIC)]
    reference = np.abs(trained.maps.reshape(len(x), -1))
    target = torch.as_tensor(trained.outputs, dtype=torch.int64)
    found: list[RandomisedLayer] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name, module in reversed(layers):
            module.reset_parameters()  # type: ignore[operator]
            if isinstance(module, nn.Linear | nn.Conv2d) and module.bias is not None:
                # PyTorch's default bias is small; draw it like the weights' scale so the
                # layer is noise, not nearly a function of its input's mean.
                nn.init.normal_(module.bias, std=0.1)
            again, _ = _maps(copied, x, target, method, labels, steps)
            flat = np.abs(again.reshape(len(x), -1))
            found.append(RandomisedLayer(name, _mean_rank_correlation(reference, flat)))
    return found


def _mean_rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over rows of Spearman's rank correlation; a constant row counts as 0 (no order
    to agree with)."""
    from scipy import stats

    values = []
    for row_a, row_b in zip(a, b, strict=True):
        if np.ptp(row_a) == 0 or np.ptp(row_b) == 0:
            values.append(0.0)
            continue
        values.append(float(stats.spearmanr(row_a, row_b).statistic))
    return float(np.mean(values))
