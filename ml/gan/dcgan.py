"""DCGAN (Radford et al. 2015, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks").

The GAN objective with the non-saturating generator loss (`ml.gan.gan`), on convolutional
networks (`ml.gan.networks`): a generator of transposed convolutions with batch norm and ReLU,
tanh output; a discriminator of strided convolutions with LeakyReLU 0.2 and batch norm; all
weights from N(0, 0.02); Adam with step size 2e-4 and beta1 0.5 for both, constant. Images
are square, of side 8 (the built-in digits, the default data), 16, 32 or 64, grey or colour:
the channels and the size come from the data (an uploaded samples dataset x[N, C, H, W] with
pixels in [-1, 1]).

On digits each evaluation logs the digits classifier's metrics (`eval/fd_digits`,
`eval/classes_covered`, `eval/min_class_fraction`, ...; `ml.gan.digits`). With
`conditional: true` it is a conditional DCGAN (see `ml.gan.cgan`). The loop is
`ml.gan.adversarial`'s; this file is DCGAN's defaults.
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


class DCGANConfig(gan.GANConfig):
    """A GAN's config with DCGAN's defaults: conv networks, digits, Adam 2e-4, beta1 0.5."""

    dataset: DatasetSpec = Field(
        default_factory=DigitsDataset,
        description="The images to learn: scikit-learn's 8x8 digits (kind 'digits', the "
        "default) or an uploaded samples dataset of images x[N, C, H, W] in [-1, 1] (kind "
        "'uploaded'; square, side 8, 16, 32 or 64).",
    )
    architecture: Literal["mlp", "conv", "auto"] = Field(
        "conv", description="conv (DCGAN's networks); mlp or auto as in the other variants."
    )
    latent_dim: int = Field(32, ge=1, le=512, description="Size of the noise vector z.")
    batch_size: int = Field(64, ge=2, le=8192, description="Real and generated images per update.")
    total_steps: int = Field(3000, ge=1, le=1_000_000, description="Number of generator updates.")
    learning_rate_g: float = Field(2e-4, gt=0.0, le=1.0, description="Adam step size of G.")
    learning_rate_d: float = Field(2e-4, gt=0.0, le=1.0, description="Adam step size of D.")
    r1_weight: float = Field(
        0.0,
        ge=0.0,
        le=1000.0,
        description="gamma of the R1 penalty (Mescheder et al. 2018) on real images; off, as "
        "in DCGAN.",
    )
    learning_rate_schedule: Literal["linear", "constant"] = Field(
        "constant", description="constant (DCGAN) or linear decay to zero."
    )
    eval_samples: int = Field(
        1000, ge=1, le=adversarial.MAX_SAMPLES, description="Generated samples per evaluation."
    )


def cost(config: DCGANConfig, *, datasets: Mapping[str, Any] | None = None) -> Cost:
    """`ml.gan.adversarial.cost`, with the conv layers' multiply-accumulates."""
    return adversarial.cost(config, datasets=datasets)


class DCGANModel(AdversarialModel):
    """A trained DCGAN: samples are images as rows of C*H*W pixels (`sample_shape`)."""

    kind: ClassVar[str] = "dcgan"
    config_class = DCGANConfig
    scores = "probability"


def variant() -> Variant[DCGANConfig]:
    """GAN's losses and optimizers (`ml.gan.gan`); the networks come from the config."""
    return gan.variant("dcgan", DCGANModel)


def train(
    config: DCGANConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
) -> DCGANModel:
    model = adversarial.train(
        variant(), config, seed=seed, hooks=hooks, device=device, resume=resume, datasets=datasets
    )
    assert isinstance(model, DCGANModel)
    return model


ALGORITHM = Algorithm(
    name="dcgan",
    family="gan",
    description="DCGAN (Radford et al. 2015): a GAN with a transposed-conv generator and a "
    "conv discriminator (batch norm, LeakyReLU 0.2, N(0, 0.02) init, Adam 2e-4 with beta1 "
    "0.5, non-saturating loss). Recommended for images: the built-in 8x8 digits (default) or "
    "uploaded square images of side 8 to 64, grey or colour, in [-1, 1].",
    config=DCGANConfig,
    train=train,
    model=DCGANModel,
    queue="gpu",
    cost=cost,
    dataset_kinds=("samples",),
)
