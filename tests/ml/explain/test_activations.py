"""Activations and gradient flow: a deep MLP learns scikit-learn's digits with each of the
configurable activations, and `ml.explain.gradient_flow.layer_gradients` shows what Glorot &
Bengio 2010 ("Understanding the difficulty of training deep feedforward neural networks")
describe, and what it does not show under PyTorch's default initialisation.

The network is `ml.core.nets.mlp(64, [32] * 6, 10)`, PyTorch's default initialisation
(uniform, variance 1/(3 fan_in)), pixels scaled to [0, 1], Adam. Measured over seeds 0-2
(the tests use seed 0; their margins come from the three):

- At initialisation the gradient reaching the first layer's weights, relative to the last
  layer's, is 1.2e-5 to 2.1e-5 with sigmoid against 0.08 to 0.18 with ReLU (leaky ReLU the
  same, ELU 0.25 to 0.5, tanh 0.3 to 0.56, GELU 0.012 to 0.035): the gradient vanishes with
  sigmoid only. Yet no sigmoid unit is saturated then (mean |f'| = 0.244, its maximum being
  1/4): it vanishes because each layer multiplies it by f' <= 1/4 and by small weights, not
  because of saturation. Tanh, whose f'(0) = 1, does not lose it at this depth and
  initialisation.
- With Adam at 0.01 for 300 steps every activation learns: held-out accuracy 0.82-0.93 for
  ReLU, 0.91-0.98 for the others, but 0.25-0.33 for sigmoid (chance: 0.1), the slow learner.
- Saturation appears with a large step (Adam at 0.03, 100 steps): sigmoid's last hidden
  layer is saturated in all its units (1.0 for every seed; 0.68-0.77 over all layers) and its
  accuracy falls to chance; tanh saturates 0.10-0.24 of its units (up to 0.44 in the deep
  layers); ELU none (0.0). ReLU does not saturate, but 0.47-0.56 of its units die (off for
  every input, so f' = 0: `layer_gradients` counts them as saturated, as they pass no
  gradient either), its last layer's 0.44-0.69 still well below sigmoid's 1.0.
"""

from __future__ import annotations

import copy
from functools import cache

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional

from ml.core.nets import mlp
from ml.explain.gradient_flow import LayerGradient, layer_gradients

torch.set_num_threads(1)

HIDDEN = [32] * 6
ACTIVATIONS = ["relu", "leaky_relu", "tanh", "sigmoid", "gelu", "elu"]
Digits = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@cache
def digits() -> Digits:
    """Training and held-out pixels in [0, 1] and labels: 1400 and 397 images."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    pixels = torch.tensor(x[order] / 16.0, dtype=torch.float32)
    labels = torch.tensor(y[order])
    return pixels[:1400], labels[:1400], pixels[1400:], labels[1400:]


def network(act: str, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return mlp(64, HIDDEN, 10, act=act)


def trained(act: str, *, steps: int, learning_rate: float, seed: int = 0) -> nn.Sequential:
    x, y, _, _ = digits()
    net = network(act, seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        rows = torch.randint(len(y), (64,), generator=generator)
        loss = functional.cross_entropy(net(x[rows]), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net


def accuracy(net: nn.Module) -> float:
    _, _, x, y = digits()
    with torch.no_grad():
        return float((net(x).argmax(dim=1) == y).double().mean())


def flow(net: nn.Module) -> list[LayerGradient]:
    """The gradient of the held-out cross-entropy, layer by layer."""
    _, _, x, y = digits()
    return layer_gradients(net, x, lambda logits: functional.cross_entropy(logits, y))


def first_to_last(layers: list[LayerGradient]) -> float:
    """||dL/dW|| of the first Linear layer over that of the last."""
    norms = [layer.weight_grad_norm for layer in layers if layer.kind == "Linear"]
    assert len(norms) == len(HIDDEN) + 1 and all(n is not None for n in norms)
    return float(norms[0]) / float(norms[-1])  # type: ignore[arg-type]


def saturation(layers: list[LayerGradient]) -> list[float]:
    """The saturated fraction of each hidden activation, from the input up."""
    found = [layer.saturated_fraction for layer in layers if layer.saturated_fraction is not None]
    assert len(found) == len(HIDDEN)
    return found


def test_sigmoid_gradients_vanish_at_initialisation_without_saturating() -> None:
    ratio = {act: first_to_last(flow(network(act))) for act in ACTIVATIONS}
    assert ratio["sigmoid"] < 1e-3  # measured 1.2e-5 to 2.1e-5
    assert ratio["relu"] > 1e3 * ratio["sigmoid"]  # 0.08 to 0.18
    for act in ("relu", "leaky_relu", "tanh", "elu", "gelu"):
        assert ratio[act] > 5e-3, act  # GELU, the lowest: 0.012 to 0.035
    assert ratio["tanh"] > 0.1  # 0.3 to 0.56: at this depth and init, tanh keeps it
    sigmoid = [layer for layer in flow(network("sigmoid")) if layer.kind == "Sigmoid"]
    assert all(layer.saturated_fraction == 0.0 for layer in sigmoid)
    for layer in sigmoid:  # f' <= 1/4 everywhere, and near it: not saturated, still small
        assert layer.mean_derivative is not None and 0.2 < layer.mean_derivative <= 0.25


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_every_activation_learns_the_digits(act: str) -> None:
    net = trained(act, steps=300, learning_rate=0.01)
    if act == "sigmoid":
        assert accuracy(net) > 0.18  # 0.25 to 0.33: learning, slowly (chance is 0.1)
    else:
        assert accuracy(net) > 0.75  # 0.82 (ReLU) to 0.98


def test_a_large_step_saturates_sigmoid_and_tanh_and_kills_relus() -> None:
    nets = {
        act: trained(act, steps=100, learning_rate=0.03)
        for act in ("sigmoid", "tanh", "elu", "relu")
    }
    sigmoid, tanh, elu, relu = (saturation(flow(net)) for net in nets.values())
    assert accuracy(nets["sigmoid"]) < 0.2  # 0.08 to 0.10: stuck at chance
    assert sigmoid[-1] > 0.9  # 1.0: the top hidden layer, as in Glorot & Bengio's 3.1
    assert np.mean(sigmoid) > 0.5  # 0.68 to 0.77
    assert np.mean(tanh) > 0.05  # 0.10 to 0.24
    assert max(elu) < 0.05  # 0.0: ELU keeps a gradient below zero (Clevert et al. 2016)
    assert sigmoid[-1] > relu[-1] + 0.2  # ReLU's last layer: 0.44 to 0.69
    assert np.mean(relu) > 0.3  # 0.47 to 0.56 dead: no saturation, but no gradient either


# -- what layer_gradients reports, and what it leaves alone ----------------------------------
def test_saturation_and_gradients_match_their_definitions() -> None:
    """Identity weights, so each sigmoid unit sees a known input: per unit, the mean over
    the batch of sigma'(x) = sigma(x)(1 - sigma(x)) decides saturation."""
    linear = nn.Linear(4, 4)
    with torch.no_grad():
        linear.weight.copy_(torch.eye(4))
        linear.bias.zero_()
    net = nn.Sequential(linear, nn.Sigmoid())
    x = torch.tensor([[0.0, 5.0, -5.0, 0.0], [0.0, 5.0, -5.0, 10.0]])
    first, second = layer_gradients(net, x)
    s = torch.sigmoid(x.double())
    slope = s * (1 - s)  # [2, 4]: 0.25, 0.0066, 0.0066, (0.25 and 4.5e-5)
    assert second.kind == "Sigmoid" and second.shape == [4]
    assert second.saturated_fraction == 0.5  # units 1 and 2; unit 3 averages 0.125
    assert second.mean_derivative == pytest.approx(float(slope.mean()))
    # the default objective, the mean output: dL/dy = 1/8, dL/dz = sigma'(z)/8, dL/dW = x^T dz
    dz = slope / x.numel()
    assert first.kind == "Linear" and first.shape == [4]
    assert first.output_grad_norm == pytest.approx(float(dz.norm()))
    assert first.weight_grad_norm == pytest.approx(float((dz.T @ x.double()).norm()))
    assert first.weight_norm == pytest.approx(2.0)
    assert second.output_grad_norm == pytest.approx(float(torch.full((2, 4), 1 / 8).norm()))


def conv_network() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 8, 3, stride=2, padding=1),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 3),
    )


def test_conv_networks_are_reported_layer_by_layer() -> None:
    net = conv_network().eval()
    layers = layer_gradients(net, torch.randn(5, 1, 8, 8), lambda y: y[:, 0].sum())
    assert [(layer.name, layer.kind, layer.shape) for layer in layers] == [
        ("0", "Conv2d", [4, 8, 8]),
        ("2", "ReLU", [4, 8, 8]),
        ("3", "Conv2d", [8, 4, 4]),
        ("4", "Tanh", [8, 4, 4]),
        ("6", "Linear", [3]),
    ]
    for layer in layers:
        assert layer.output_grad_norm > 0
        parametric = layer.kind in ("Conv2d", "Linear")
        assert (layer.weight_grad_norm is not None) == parametric
        assert (layer.saturated_fraction is not None) == (not parametric)


def test_the_network_is_left_as_it_was() -> None:
    """Parameters, batch norm statistics (a forward pass in train mode moves them), gradients
    already accumulated, the train/eval mode and the hooks: all as before."""
    net = conv_network().train()
    conv = net[3]
    assert isinstance(conv, nn.Conv2d)
    conv.weight.grad = torch.ones_like(conv.weight)
    before = copy.deepcopy(net.state_dict())
    layer_gradients(net, torch.randn(5, 1, 8, 8))
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert net.training and all(m.training for m in net.modules())
    assert conv.weight.grad is not None and torch.equal(
        conv.weight.grad, torch.ones_like(conv.weight)
    )
    assert all(p.grad is None for name, p in net.named_parameters() if not name.startswith("3."))
    for module in net.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
    net.eval()
    layer_gradients(net, torch.randn(2, 1, 8, 8))
    assert not net.training


def test_the_objective_must_be_a_scalar() -> None:
    with pytest.raises(ValueError, match="scalar"):
        layer_gradients(conv_network(), torch.randn(2, 1, 8, 8), lambda y: y)
    net = conv_network()
    with pytest.raises(ValueError, match="scalar"):
        layer_gradients(net, torch.randn(2, 1, 8, 8), lambda y: y.detach().sum())
    assert all(not m._forward_hooks for m in net.modules())  # removed after a failure too
