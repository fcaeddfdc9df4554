"""Attributions point at what a network uses: saliency and Grad-CAM maxima fall on the one
feature (or image patch) a hand-built network depends on, integrated gradients are
complete, and the randomisation test tells a trained network's map from a random one's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ml.core.errors import QueryError
from ml.explain.activations import last_hidden, record
from ml.explain.attribution import attribute, grad_cam, randomisation_test
from ml.explain.targets import Explained

FEATURE = 2  # the only input the vector network reads


def vector_explained(network: nn.Module, width: int = 6) -> Explained:
    return Explained(
        forward=network,
        root=network,
        input_shape=(width,),
        input_field="observations",
        outputs=("y",),
        output_label="output",
    )


def one_feature_network() -> nn.Sequential:
    """y = sum_j relu(w_j x[FEATURE] + b_j) v_j: only x[FEATURE] matters."""
    torch.manual_seed(0)
    first = nn.Linear(6, 8)
    with torch.no_grad():
        mask = torch.zeros(6)
        mask[FEATURE] = 1.0
        first.weight.mul_(mask)
    return nn.Sequential(first, nn.Tanh(), nn.Linear(8, 1))


@pytest.mark.parametrize("method", ["gradients", "integrated_gradients"])
def test_saliency_peaks_on_the_feature_the_output_depends_on(method: str) -> None:
    explained = vector_explained(one_feature_network())
    x = torch.randn(16, 6, generator=torch.Generator().manual_seed(1))
    found = attribute(explained, x, method=method)  # type: ignore[arg-type]
    assert (np.abs(found.maps).argmax(axis=1) == FEATURE).all()
    others = np.delete(found.maps, FEATURE, axis=1)
    assert np.abs(others).max() == 0.0


def test_integrated_gradients_add_up_to_the_output_change() -> None:
    explained = vector_explained(one_feature_network())
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(2))
    found = attribute(explained, x, method="integrated_gradients", steps=64)
    with torch.no_grad():
        change = (explained(x) - explained(torch.zeros_like(x)))[:, 0].double().numpy()
    assert np.allclose(found.maps.sum(axis=1), change, atol=1e-4)
    assert found.delta is not None and np.abs(found.delta).max() < 1e-4


def patch_network() -> nn.Sequential:
    """Images [2, 8, 8] -> y: a 3 x 3 convolution that copies each channel to its own map,
    and a head that sums channel 0's map only, so only where channel 0 is lit matters."""
    conv = nn.Conv2d(2, 2, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0
        conv.weight[1, 1, 1, 1] = 1.0
    head = nn.Linear(2 * 64, 1, bias=False)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[0, :64] = 1.0
    return nn.Sequential(conv, nn.ReLU(), nn.Flatten(), head)


def test_grad_cam_and_saliency_fall_on_the_patch_that_matters() -> None:
    network = patch_network()
    explained = Explained(
        forward=network, root=network, input_shape=(2, 8, 8), input_field="observations",
        outputs=("y",), output_label="output",
    )  # fmt: skip
    x = torch.zeros(3, 2, 8, 8)
    patches = [(2, 5), (6, 1), (0, 0)]
    for i, (r, c) in enumerate(patches):
        x[i, 0, r, c] = 1.0  # the patch the output reads
        x[i, 1, 7 - r, 7 - c] = 3.0  # a brighter one it ignores
    _, _, maps, coarse = grad_cam(explained, x, network[0])
    assert coarse == (8, 8) and maps.shape == (3, 8, 8)
    for i, (r, c) in enumerate(patches):
        assert np.unravel_index(maps[i].argmax(), (8, 8)) == (r, c)
        ig = attribute(explained, x[i : i + 1], method="integrated_gradients").maps[0]
        assert np.unravel_index(np.abs(ig).sum(axis=0).argmax(), (8, 8)) == (r, c)


def trained_network(seed: int = 0) -> nn.Sequential:
    """An MLP fitted to y = sin(3 x[FEATURE]): what it learned is one feature."""
    torch.manual_seed(seed)
    network = nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                            nn.Linear(32, 1))  # fmt: skip
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    x = torch.randn(512, 6)
    y = torch.sin(3 * x[:, FEATURE : FEATURE + 1])
    for _ in range(300):
        optimizer.zero_grad()
        nn.functional.mse_loss(network(x), y).backward()
        optimizer.step()
    return network


def test_randomisation_test_separates_a_trained_map_from_a_random_one() -> None:
    network = trained_network()
    before = [p.detach().clone() for p in network.parameters()]
    explained = vector_explained(network)
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(3))
    trained = attribute(explained, x, method="gradients")
    assert (np.abs(trained.maps).argmax(axis=1) == FEATURE).mean() > 0.9
    layers = randomisation_test(explained, x, trained, method="gradients", seed=0)
    assert [layer.layer for layer in layers] == ["4", "2", "0"]  # top layer first
    # Every layer re-drawn: the map is another. A rank correlation over 6 features is noisy
    # from one draw to the next (-0.09 to 0.50 over seeds 0-5), so the mean of six is held.
    redrawn = [
        randomisation_test(explained, x, trained, method="gradients", seed=seed)[-1]
        for seed in range(6)
    ]
    assert np.mean([layer.rank_correlation for layer in redrawn]) < 0.3
    # The network explained is a deep copy's: the trained one is untouched.
    assert all(torch.equal(a, b) for a, b in zip(before, network.parameters(), strict=True))


def test_an_output_out_of_range_names_the_field() -> None:
    explained = vector_explained(one_feature_network())
    with pytest.raises(QueryError) as error:
        attribute(explained, torch.zeros(1, 6), method="gradients", output=3)
    assert error.value.field == "output"


def test_activations_are_recorded_without_changing_the_network() -> None:
    network = trained_network()
    explained = vector_explained(network)
    names = [name for name, _ in explained.layers()]
    assert names == ["0", "1", "2", "3", "4"]
    seen = record(explained, torch.randn(5, 6), names)
    assert [tuple(seen[n].shape) for n in names] == [(5, 32), (5, 32), (5, 32), (5, 32), (5, 1)]
    assert seen["1"].abs().max() <= 1.0  # a tanh's outputs
    assert all(not m._forward_hooks for m in network.modules())
    assert last_hidden(explained) == "3"
