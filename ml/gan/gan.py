"""Generative Adversarial Networks (Goodfellow et al. 2014, "Generative Adversarial Nets").

A generator G maps noise z ~ N(0, I) to data space; a discriminator D (here a logit) learns to
tell real samples from generated ones. The two play the minimax game

    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]                          (Eq. 1)

trained by alternating gradient steps: `d_steps` discriminator updates (Algorithm 1's k), then
one generator update. With `loss="minimax"` the generator descends log(1 - D(G(z))) exactly
as in Eq. 1; with `loss="non_saturating"` (the default, Section 3 of the paper) it ascends
log D(G(z)) instead, which has the same fixed point but strong gradients early in training,
when D rejects every generated sample and log(1 - D(G(z))) saturates.

The data is by default a 2-D ring of Gaussians (`ml.gan.datasets`), the mode-collapse
benchmark of Metz et al. 2017 and Lin et al. 2018 (PacGAN), evaluated with
`ml.gan.metrics.mode_coverage`: how many of the modes the generator reaches, and which
fraction of its samples lie within 3 standard deviations of a mode. It may instead be
PacGAN's grid of 25 Gaussians, a swiss roll, or a user's own points (an uploaded `samples`
dataset, rows x[N, d]), the last two evaluated by the kernel two-sample distance
`ml.gan.metrics.mmd_rbf`.

The loop (k discriminator updates, then one generator update; checkpoints, metrics,
evaluations) is shared with the other variants in `ml.gan.adversarial`; this file is the
GAN's config, its losses and its optimizers.

The mixtures' modes are tiny (std 0.01 at radius 1 on the ring, 0.05 two apart on the
grid), where a vanilla GAN collapses easily; the defaults are what makes the plain algorithm
cover them, all of it common practice rather than a change of objective:

- batch normalisation in the generator's hidden layers (DCGAN, Radford et al. 2016, and the
  PacGAN ring experiments), a 2-D latent and a four-layer ReLU generator, so the generator can
  cut its noise into sharply separated pieces;
- Adam with beta1 = 0.5 (DCGAN), batches of 256, and a wider discriminator ([256, 256]) with
  twice the generator's step size, so it keeps up with a generator that drops a mode (with
  D's [128, 128] at G's step size, the grid kept 24 modes at 62% high-quality);
- step sizes that decay linearly to zero, so the generator stops circling each mode and
  settles within its width (see `ml.gan.adversarial.learning_rate_factor`);
- the R1 penalty on D's slope at the data, gamma = 1 (Mescheder et al. 2018, who show the
  unregularised game does not converge locally on such data): without it the grid's seeds
  0-2 ended at 77.8%, 43.7% and 84.3% high-quality, with it at 75.2%, 76.1% and 78.1%;
- 6,000 steps with an evaluation every 500, the best kept (`keep_best`).

Measured with these defaults on one core (about 40 s a run): grid25, seeds 0, 1 and 2, all
25 modes with 75.2%, 76.1% and 78.1% of the samples within 3 std; ring8, seeds 0 and 1, all
8 modes with 92.9% and 89.7% (tests/ml/gan/test_mixtures.py; `bench.gan_mixtures` has the
spread over more seeds). Time buys quality: 10,000 steps took grid seeds 0 and 1 to 86.3%
and 83.0%. PacGAN's packing (the discriminator judging 2 or 4 samples at once) was tried on
the grid and left out: in this budget the packed discriminator stayed at chance (accuracy
0.5) and the samples near uniform (2-6% high-quality).

A discriminator whose loss stays near 0 has won outright, and the generator's gradients
vanish (Arjovsky & Bottou 2017): the run warns `discriminator_wins`. The model keeps
both networks: the generator draws samples, the discriminator scores points.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from ml.core.algorithm import Algorithm
from ml.core.cost import Cost
from ml.core.hooks import Hooks
from ml.core.optim import adam
from ml.gan import adversarial
from ml.gan.adversarial import (
    AdversarialConfig,
    AdversarialModel,
    DiscriminatorLoss,
    Variant,
    Width,
    make_discriminator,
    make_generator,
)

__all__ = ["ALGORITHM", "GANConfig", "GANModel", "make_discriminator", "make_generator", "train"]


# -- config ------------------------------------------------------------------------------------
class GANConfig(AdversarialConfig):
    """Hyper-parameters of a GAN run; the defaults capture all 8 modes of the default ring.
    The shared fields (data, networks, budget, intervals) are `AdversarialConfig`'s."""

    loss: Literal["non_saturating", "minimax"] = Field(
        "non_saturating",
        description="Generator objective: maximise log D(G(z)) (non_saturating) or minimise "
        "log(1 - D(G(z))) (minimax, Eq. 1 of the paper).",
    )
    d_steps: int = Field(
        1, ge=1, le=10, description="Discriminator updates per generator update (k)."
    )
    discriminator_hidden: list[Width] = Field(
        default_factory=lambda: [256, 256],
        min_length=1,
        max_length=8,
        description="Hidden layer widths of the discriminator.",
    )
    batch_size: int = Field(
        256,
        ge=2,
        le=8192,
        description="Real and generated samples per update (batch norm needs 2).",
    )
    total_steps: int = Field(6000, ge=1, le=1_000_000, description="Number of generator updates.")
    learning_rate_g: float = Field(1e-3, gt=0.0, le=1.0, description="Adam step size of G.")
    learning_rate_d: float = Field(
        2e-3,
        gt=0.0,
        le=1.0,
        description="Adam step size of D (twice G's: a discriminator that keeps up tells the "
        "generator about every mode it misses).",
    )
    beta1: float = Field(0.5, ge=0.0, lt=1.0, description="Adam beta1 (DCGAN's 0.5).")
    beta2: float = Field(0.999, ge=0.0, lt=1.0, description="Adam beta2.")
    r1_weight: float = Field(
        1.0,
        ge=0.0,
        le=1000.0,
        description="gamma of the R1 penalty (Mescheder et al. 2018), gamma/2 E[|grad_x "
        "D(x)|^2] on real data: it lets the samples settle on sharply peaked modes instead of "
        "circling them; 0 turns it off.",
    )


# -- cost --------------------------------------------------------------------------------------
def cost(config: GANConfig, *, datasets: Mapping[str, Any] | None = None) -> Cost:
    """`ml.gan.adversarial.cost`: total_steps x (d_steps x D update + G update) plus the
    evaluations, each update about 6 x batch x parameters; the R1 penalty's double backward
    pass through D counted as two more passes, as WGAN-GP's."""
    return adversarial.cost(config, datasets=datasets, d_extra_passes=2 if config.r1_weight else 0)


# -- losses (all in logits, so log(sigmoid) never underflows) ----------------------------------
def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))]: D ascends Eq. 1."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def r1_penalty(discriminator: nn.Module, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(E[|grad_x D(x)|^2] over the real batch x[B, d], D's logits on it [B, 1]): Mescheder
    et al. 2018, Eq. 9 before gamma / 2. Penalising D's slope on the data alone (not between
    data and samples, as WGAN-GP does) makes the GAN converge locally on data this peaked,
    where the unregularised game keeps circling; differentiable in D's weights."""
    x = real.detach().requires_grad_(True)
    logits = discriminator(x)
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)  # [B, d]
    return grad.pow(2).reshape(len(x), -1).sum(dim=1).mean(), logits


def generator_loss(fake_logits: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "minimax":
        # E[log(1 - D(G(z)))] = -E[softplus(logit)]; G descends it (Eq. 1).
        return -F.softplus(fake_logits).mean()
    # -E[log D(G(z))] = E[softplus(-logit)]: same fixed point, no saturation.
    return F.softplus(-fake_logits).mean()


# -- what the shared loop calls (Algorithm 1 of the paper: k steps of D, then one of G) --------
def discriminator_step(
    discriminator: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    config: GANConfig,
    noise: torch.Generator,
) -> DiscriminatorLoss:
    """The loss of one discriminator update on a real and a generated batch x[B, d], with
    the R1 penalty gamma / 2 E[|grad D(x)|^2] when `r1_weight` (gamma) is set."""
    fake_logits = discriminator(fake)  # [B, 1]
    if not config.r1_weight:
        real_logits = discriminator(real)  # [B, 1]
        return DiscriminatorLoss(
            discriminator_loss(real_logits, fake_logits), real_logits, fake_logits
        )
    r1, real_logits = r1_penalty(discriminator, real)
    loss = discriminator_loss(real_logits, fake_logits) + config.r1_weight / 2 * r1
    return DiscriminatorLoss(loss, real_logits, fake_logits, {"gan/r1_penalty": r1.detach()})


def generator_step(fake_logits: torch.Tensor, config: GANConfig) -> torch.Tensor:
    """The loss of one generator update, from D's scores of its samples [B, 1]."""
    return generator_loss(fake_logits, config.loss)


def optimizers(
    config: GANConfig, generator: nn.Module, discriminator: nn.Module, device: torch.device
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """Adam for both, with DCGAN's beta1 = 0.5 by default."""
    betas = (config.beta1, config.beta2)
    opt_g = adam(generator.parameters(), lr=config.learning_rate_g, betas=betas, device=device)
    opt_d = adam(discriminator.parameters(), lr=config.learning_rate_d, betas=betas, device=device)
    return opt_g, opt_d


# -- model -------------------------------------------------------------------------------------
class GANModel(AdversarialModel):
    """A trained GAN: the generator draws samples, the discriminator scores points (D(x),
    a probability)."""

    kind: ClassVar[str] = "gan"
    config_class = GANConfig
    scores = "probability"


def variant(name: str = "gan", model: type[AdversarialModel] = GANModel) -> Variant[Any]:
    """What the shared loop calls, looked up when a run starts (so a test can wrap one);
    `dcgan` and `cgan` are this variant under their own name and model kind."""
    return Variant(
        name=name,
        model=model,
        discriminator_loss=discriminator_step,
        generator_loss=generator_step,
        optimizers=optimizers,
        scores="probability",
    )


def train(
    config: GANConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
) -> GANModel:
    """Algorithm 1 of Goodfellow et al. 2014 with Adam; returns both networks as a model."""
    model = adversarial.train(
        variant(), config, seed=seed, hooks=hooks, device=device, resume=resume, datasets=datasets
    )
    assert isinstance(model, GANModel)
    return model


ALGORITHM = Algorithm(
    name="gan",
    family="gan",
    description="Generative adversarial network (Goodfellow et al. 2014) with the "
    "non-saturating or the minimax generator loss, on a 2-D mixture of Gaussians (PacGAN's "
    "ring8 by default, or grid25), a swiss roll or uploaded samples. Recommended for sharply "
    "peaked 2-D mixtures such as ring8 and grid25: it puts far more of its samples on the "
    "modes than the WGANs, which spread them between the modes.",
    config=GANConfig,
    train=train,
    model=GANModel,
    queue="gpu",
    cost=cost,
    dataset_kinds=("samples",),
)
