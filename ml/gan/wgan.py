"""Wasserstein GAN (Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN").

The discriminator becomes a critic f: an unbounded score rather than a probability. By the
Kantorovich-Rubinstein duality the Wasserstein-1 distance between the data P_r and the
generator's distribution P_g is

    W(P_r, P_g) = sup_{|f|_L <= 1}  E_x[f(x)] - E_z[f(G(z))]                      (Eq. 2)

so the critic ascends E[f(x)] - E[f(G(z))] over a family of K-Lipschitz functions, and the
generator descends -E[f(G(z))] (Algorithm 1 of the paper). The paper keeps f Lipschitz by
clipping every weight of the critic to [-c, c] after each of its updates (c = 0.01), and
trains with RMSProp (lr 5e-5; momentum-based optimizers made the critic unstable) with
n_critic = 5 critic updates per generator update. Those are the defaults here.

The critic's objective is a distance estimate, reported as `gan/wasserstein`
(E[f(x)] - E[f(G(z))] on the critic's batches, up to the unknown constant K); unlike a GAN's
losses it falls as the generator improves. `gan/d_accuracy` counts a point as called real
when its score is above the mean score of the real and generated batches together
(`ml.gan.adversarial.accuracy`).

Clipping constrains the critic crudely (it pushes weights to +-c and the critic towards
simple functions), so on PacGAN's 2-D mixtures the samples cover the modes but many fall
between them; `wgan_gp` is the better-behaved Wasserstein variant, and `gan` places more
samples on the modes. The loop is `ml.gan.adversarial`'s; this file is WGAN's config, its
losses, its optimizer and its clipping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from ml.core.algorithm import Algorithm
from ml.core.cost import Cost
from ml.core.hooks import Hooks
from ml.gan import adversarial
from ml.gan.adversarial import AdversarialConfig, AdversarialModel, DiscriminatorLoss, Variant


# -- config ------------------------------------------------------------------------------------
class WGANConfig(AdversarialConfig):
    """Hyper-parameters of a WGAN run (Algorithm 1 of the paper: c = 0.01, RMSProp 5e-5,
    n_critic = 5). The shared fields (data, networks, budget, intervals) are
    `AdversarialConfig`'s."""

    d_steps: int = Field(5, ge=1, le=10, description="Critic updates per generator update.")
    clip_value: float = Field(
        0.01, gt=0.0, le=10.0, description="Every critic weight is clipped to [-c, c]."
    )
    learning_rate_g: float = Field(5e-5, gt=0.0, le=1.0, description="RMSProp step size of G.")
    learning_rate_d: float = Field(
        5e-5, gt=0.0, le=1.0, description="RMSProp step size of the critic."
    )
    learning_rate_schedule: Literal["linear", "constant"] = Field(
        "linear",
        description="linear: both step sizes decay linearly to zero over total_steps, so the "
        "samples settle onto the modes (on ring8 it doubles the high-quality fraction of "
        "600 steps); constant: they stay fixed, as in the paper.",
    )


# -- cost --------------------------------------------------------------------------------------
def cost(config: WGANConfig, *, datasets: Mapping[str, Any] | None = None) -> Cost:
    """`ml.gan.adversarial.cost`: total_steps x (d_steps x critic update + G update) plus
    the evaluations (clipping costs a pass over the critic's weights, nothing next to that)."""
    return adversarial.cost(config, datasets=datasets)


# -- losses ------------------------------------------------------------------------------------
def critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """-(E[f(x)] - E[f(G(z))]): the critic ascends the Wasserstein estimate of Eq. 2."""
    return fake_scores.mean() - real_scores.mean()


def generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """-E[f(G(z))]: G moves its samples up the critic."""
    return -fake_scores.mean()


def clip_weights(critic: nn.Module, clip_value: float) -> None:
    """Clip every parameter of the critic to [-c, c], in place (the paper's Lipschitz
    constraint)."""
    with torch.no_grad():
        for param in critic.parameters():
            param.clamp_(-clip_value, clip_value)


# -- what the shared loop calls ------------------------------------------------------------------
def discriminator_step(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    config: WGANConfig,
    noise: torch.Generator,
) -> DiscriminatorLoss:
    """The loss of one discriminator update on a real and a generated batch x[B, d]."""
    real_scores, fake_scores = critic(real), critic(fake)  # [B, 1] each
    loss = critic_loss(real_scores, fake_scores)
    wasserstein = (real_scores.mean() - fake_scores.mean()).detach()
    return DiscriminatorLoss(loss, real_scores, fake_scores, {"gan/wasserstein": wasserstein})


def generator_step(fake_scores: torch.Tensor, config: WGANConfig) -> torch.Tensor:
    """The loss of one generator update, from D's scores of its samples [B, 1]."""
    return generator_loss(fake_scores)


def optimizers(
    config: WGANConfig, generator: nn.Module, critic: nn.Module, device: torch.device
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """RMSProp for both (the paper's choice: Adam made the clipped critic unstable)."""
    opt_g = torch.optim.RMSprop(generator.parameters(), lr=config.learning_rate_g)
    opt_d = torch.optim.RMSprop(critic.parameters(), lr=config.learning_rate_d)
    return opt_g, opt_d


def after_critic_step(critic: nn.Module, config: WGANConfig) -> None:
    clip_weights(critic, config.clip_value)


# -- model -------------------------------------------------------------------------------------
class WGANModel(AdversarialModel):
    """A trained WGAN: the generator draws samples, the critic scores points (an unbounded
    score, higher for points more like the data)."""

    kind: ClassVar[str] = "wgan"
    config_class = WGANConfig
    scores = "critic"


def variant() -> Variant[WGANConfig]:
    """What the shared loop calls, looked up when a run starts (so a test can wrap one)."""
    return Variant(
        name="wgan",
        model=WGANModel,
        discriminator_loss=discriminator_step,
        generator_loss=generator_step,
        optimizers=optimizers,
        scores="critic",
        after_discriminator_step=after_critic_step,
    )


def train(
    config: WGANConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
) -> WGANModel:
    """Algorithm 1 of Arjovsky et al. 2017; returns the generator and the critic."""
    model = adversarial.train(
        variant(), config, seed=seed, hooks=hooks, device=device, resume=resume, datasets=datasets
    )
    assert isinstance(model, WGANModel)
    return model


ALGORITHM = Algorithm(
    name="wgan",
    family="gan",
    description="Wasserstein GAN (Arjovsky et al. 2017): a critic kept Lipschitz by weight "
    "clipping (0.01), RMSProp 5e-5, 5 critic steps per generator step; on a 2-D mixture "
    "(PacGAN's ring8 by default, or grid25), a swiss roll or uploaded samples. Mainly a "
    "baseline: it reaches the modes of ring8 but leaves many samples between them; prefer "
    "wgan_gp for smooth data (swiss roll, uploads) and gan for sharply peaked mixtures.",
    config=WGANConfig,
    train=train,
    model=WGANModel,
    queue="gpu",
    cost=cost,
    dataset_kinds=("samples",),
)
