"""Every network in `ml` takes its hidden activation from its config, and the defaults build
the networks models have always had (so an old model's config, re-validated from its
metadata, rebuilds the same network).

Each case builds a network from a config and counts its activation modules: the hidden ones
are the config's choice, the fixed output ones (the actor's and the conv generator's tanh)
stay what they were.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, get_args

import numpy as np
import pytest
import torch
from sklearn.neural_network import MLPRegressor
from torch import nn

import ml
from ml.core.model import load_bytes
from ml.core.nets import Activation, activation
from ml.gan.adversarial import AdversarialModel
from ml.gan.dcgan import DCGANConfig
from ml.gan.gan import GANConfig
from ml.gan.networks import make_discriminator, make_generator
from ml.irl.deep_maxent_irl import DeepMaxEntIRLConfig
from ml.irl.models import reward_network
from ml.rl import regressors
from ml.rl.ddpg import DDPGConfig
from ml.rl.dqn import DQNConfig, make_q_network
from ml.rl.td3 import TD3Config, make_actor, make_critics
from tests.tiny_configs import TINY_CONFIGS

ACTIVATIONS: tuple[str, ...] = get_args(Activation)
ACTIVATION_TYPES = tuple({type(activation(name)) for name in ACTIVATIONS})
IMAGE = (1, 8, 8)  # an 8x8 grey image: one stride-2 layer in each DCGAN network

# name -> (builds the network for an activation, its hidden activations, fixed output ones)
Builder = Callable[[str], nn.Module]
CASES: dict[str, tuple[Builder, int, Counter[type[nn.Module]]]] = {
    "gan mlp generator": (
        lambda a: make_generator(GANConfig(generator_hidden=[8, 8], activation=a), 2),
        2,
        Counter(),
    ),
    "gan mlp discriminator": (
        lambda a: make_discriminator(GANConfig(discriminator_hidden=[8, 8], activation=a), 2),
        2,
        Counter(),
    ),
    "gan mlp discriminator, own activation": (
        lambda a: make_discriminator(
            GANConfig(discriminator_hidden=[8], activation="relu", discriminator_activation=a), 2
        ),
        1,
        Counter(),
    ),
    "conditional gan mlp discriminator": (
        lambda a: make_discriminator(GANConfig(discriminator_hidden=[8], activation=a), 2, 3),
        1,
        Counter(),
    ),
    "dcgan conv generator": (
        lambda a: make_generator(DCGANConfig(generator_channels=[8], activation=a), IMAGE),
        1,  # after the projection; the one transposed convolution ends in tanh
        Counter({nn.Tanh: 1}),
    ),
    "dcgan conv discriminator": (
        lambda a: make_discriminator(
            DCGANConfig(discriminator_channels=[8, 8], discriminator_activation=a), (1, 16, 16)
        ),
        2,
        Counter(),
    ),
    "dqn mlp": (
        lambda a: make_q_network(DQNConfig(hidden=[8, 8], activation=a), 4, 2),
        2,
        Counter(),
    ),
    "dqn dueling": (
        lambda a: make_q_network(DQNConfig(hidden=[8, 8], dueling=True, activation=a), 4, 2),
        2,
        Counter(),
    ),
    "dqn conv": (
        lambda a: make_q_network(
            DQNConfig(
                env="PixelGridWorld-v0",
                network="conv",
                conv_channels=[4, 4],
                hidden=[8],
                activation=a,
            ),
            3 * 5 * 5,
            4,
            (3, 5, 5),
        ),
        3,
        Counter(),
    ),
    "td3 actor": (
        lambda a: make_actor(TD3Config(hidden=[8, 8], activation=a), 3, 1),
        2,
        Counter({nn.Tanh: 1}),
    ),
    "td3 critics": (
        lambda a: make_critics(TD3Config(hidden=[8, 8], activation=a), 3, 1),
        4,  # two critics
        Counter(),
    ),
    "ddpg critic": (
        lambda a: make_critics(DDPGConfig(hidden=[8, 8], activation=a), 3, 1),
        2,
        Counter(),
    ),
    "deep maxent irl reward": (
        lambda a: reward_network(
            5,
            DeepMaxEntIRLConfig(hidden_sizes=[8, 8], activation=a).hidden_sizes,
            DeepMaxEntIRLConfig(activation=a).activation,
        ),
        2,
        Counter(),
    ),
}


def activation_counts(network: nn.Module) -> Counter[type[nn.Module]]:
    return Counter(type(m) for m in network.modules() if isinstance(m, ACTIVATION_TYPES))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_hidden_activation_comes_from_the_config(case: str, name: str) -> None:
    build, hidden, fixed = CASES[case]
    network = build(name)
    assert activation_counts(network) == Counter({type(activation(name)): hidden}) + fixed


def test_defaults_build_the_networks_models_always_had() -> None:
    """ReLU everywhere, but DCGAN's LeakyReLU 0.2 in the conv discriminator, whatever the
    shared `activation` says (it has always applied to the conv generator only)."""
    for config in (GANConfig(), DCGANConfig(), DCGANConfig(activation="tanh")):
        assert config.discriminator_activation is None
    conv_d = make_discriminator(DCGANConfig(activation="tanh"), IMAGE)
    leaky = [m for m in conv_d.modules() if isinstance(m, ACTIVATION_TYPES)]
    assert leaky and all(type(m) is nn.LeakyReLU and m.negative_slope == 0.2 for m in leaky)
    assert activation_counts(make_discriminator(GANConfig(), 2)) == Counter({nn.ReLU: 2})
    # `leaky_relu` chosen in a config is PyTorch's, slope 0.01, even in the conv discriminator.
    chosen = make_discriminator(DCGANConfig(discriminator_activation="leaky_relu"), IMAGE)
    assert {m.negative_slope for m in chosen.modules() if isinstance(m, nn.LeakyReLU)} == {0.01}


def test_an_old_config_without_the_new_fields_rebuilds_the_same_network() -> None:
    old: dict[str, Any] = DCGANConfig().model_dump(mode="json")
    del old["discriminator_activation"]
    torch.manual_seed(0)
    before = make_discriminator(DCGANConfig(), IMAGE)
    after = make_discriminator(DCGANConfig.model_validate(old), IMAGE)
    after.load_state_dict(before.state_dict())
    x = torch.rand(4, 64) * 2 - 1
    before.eval(), after.eval()
    assert torch.equal(before(x), after(x))
    old_mlp = regressors.MLP().model_dump(mode="json")
    del old_mlp["activation"]
    assert regressors.MLP.model_validate(old_mlp).activation == "relu"


# -- fitted Q iteration's MLP: scikit-learn's network, its forward pass in NumPy ---------------
@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
def test_fqi_mlp_predicts_as_scikit_learn_with_each_activation(name: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = np.sin(x[:, 0]) + x[:, 1] * x[:, 2]
    sklearn_name = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}[name]
    net = MLPRegressor(
        hidden_layer_sizes=(16, 16), activation=sklearn_name, max_iter=50, random_state=0
    )
    with pytest.warns(Warning):  # not converged in 50 iterations: not needed here
        net.fit(x, y)
    ours = regressors.MLPNet(
        weights=list(net.coefs_),
        biases=list(net.intercepts_),
        x_mean=np.zeros(3),
        x_scale=np.ones(3),
        y_mean=0.0,
        y_scale=1.0,
        activation=name,  # type: ignore[arg-type]
    )
    np.testing.assert_allclose(ours.predict(x), net.predict(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_fqi_mlp_fits_and_stores_its_activation(name: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 2)).astype(np.float32)
    y = x[:, 0] ** 2 - x[:, 1]
    spec = regressors.MLP(
        hidden=[16], epochs=100, batch_size=32, learning_rate=0.01, activation=name
    )  # type: ignore[arg-type]
    fitted = regressors.fit(spec, x, y, seed=0)
    assert isinstance(fitted, regressors.MLPNet) and fitted.activation == name
    loaded = regressors.predictor_from_state(fitted.state())
    assert np.array_equal(loaded.predict(x), fitted.predict(x))
    assert np.mean((fitted.predict(x) - y) ** 2) < 0.2 * np.var(y)  # it learned
    old_state = {k: v for k, v in fitted.state().items() if k != "activation"}
    assert regressors.MLPNet.from_state(old_state).activation == "relu"  # older model files


def test_a_chosen_discriminator_activation_is_trained_saved_and_loaded() -> None:
    """The conv discriminator is rebuilt from the config in the model's metadata."""
    config = {**TINY_CONFIGS["dcgan"], "total_steps": 4, "discriminator_activation": "elu"}
    model = ml.train("dcgan", config, seed=0)
    assert isinstance(model, AdversarialModel)
    loaded = load_bytes(model.to_bytes())
    assert isinstance(loaded, AdversarialModel) and loaded.discriminator is not None
    assert activation_counts(loaded.discriminator) == Counter({nn.ELU: 1})
    x = torch.rand(3, 64) * 2 - 1
    assert model.discriminator is not None
    with torch.no_grad():
        assert torch.equal(model.discriminator.eval()(x), loaded.discriminator(x))
