"""Conditional GAN (Mirza & Osindero 2014, "Conditional Generative Adversarial Nets").

Both networks see the class label y: the generator draws x = G(z, y), the discriminator
scores D(x, y), and the game is Eq. 1 of the GAN conditioned on y:

    min_G max_D  E_{x,y}[log D(x | y)] + E_{z,y}[log(1 - D(G(z | y) | y))]

with the non-saturating generator loss (`ml.gan.gan`). The conditioning is the shared config's
`conditional` switch (`ml.gan.adversarial`, `ml.gan.networks`): a learned label embedding
joins z, and the discriminator's input; each generated batch takes the labels of the real
batch it is judged beside. This file is only cGAN's defaults: conditional on, the built-in
digits, networks chosen by the data (`architecture: auto`: DCGAN's conv networks for square
images, MLPs for vectors). Any other variant takes `conditional: true` too.

A model knows its number of classes; `generate(n, seed, labels)` draws sample i of class
labels[i] (all classes in turn when labels are not given), and the `samples` query takes
`labels`. On digits each evaluation logs `eval/label_accuracy`, the fraction of samples the
digits classifier puts in the requested class, besides the other digits metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from ml.core.algorithm import Algorithm
from ml.core.cost import Cost
from ml.core.hooks import Hooks
from ml.gan import adversarial, gan
from ml.gan.adversarial import AdversarialModel, Variant
from ml.gan.datasets import DatasetSpec, DigitsDataset
from ml.gan.dcgan import DCGANConfig


class CGANConfig(DCGANConfig):
    """DCGAN's config (its optimiser, sizes and budget), conditional, with the networks
    chosen by the data."""

    dataset: DatasetSpec = Field(
        default_factory=DigitsDataset,
        description="Labelled data: scikit-learn's 8x8 digits (kind 'digits', the default) or "
        "an uploaded samples dataset with labels y (kind 'uploaded'; vectors or images in "
        "[-1, 1]).",
    )
    conditional: bool = Field(True, description="Condition both networks on the labels.")
    architecture: Literal["mlp", "conv", "auto"] = Field(
        "auto", description="auto: conv networks for square images (side 8-64), MLP otherwise."
    )


def cost(config: CGANConfig, *, datasets: Mapping[str, Any] | None = None) -> Cost:
    """`ml.gan.adversarial.cost`, the label embedding counted in the first layers."""
    return adversarial.cost(config, datasets=datasets)


class CGANModel(AdversarialModel):
    """A trained conditional GAN: `n_classes`, and samples drawn for requested labels."""

    kind: ClassVar[str] = "cgan"
    config_class = CGANConfig
    scores = "probability"


def variant() -> Variant[CGANConfig]:
    """GAN's losses and optimizers (`ml.gan.gan`); the conditioning comes from the config."""
    return gan.variant("cgan", CGANModel)


def train(
    config: CGANConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
) -> CGANModel:
    model = adversarial.train(
        variant(), config, seed=seed, hooks=hooks, device=device, resume=resume, datasets=datasets
    )
    assert isinstance(model, CGANModel)
    return model


ALGORITHM = Algorithm(
    name="cgan",
    family="gan",
    description="Conditional GAN (Mirza & Osindero 2014): generator and discriminator see the "
    "class label (a learned embedding joined to z and to D's input), non-saturating loss, "
    "Adam 2e-4 with beta1 0.5; conv networks for images, MLPs for vectors. Recommended for "
    "labelled data when you want samples of a chosen class: the built-in 8x8 digits "
    "(default) or uploaded samples with labels y.",
    config=CGANConfig,
    train=train,
    model=CGANModel,
    queue="gpu",
    cost=cost,
    dataset_kinds=("samples",),
)
