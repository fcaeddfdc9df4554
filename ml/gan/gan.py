"""Generative Adversarial Networks (Goodfellow et al. 2014, "Generative Adversarial Nets").

A generator G maps noise z ~ N(0, I) to data space; a discriminator D (here a logit) learns to
tell real samples from generated ones. The two play the minimax game

    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]                          (Eq. 1)

trained by alternating gradient steps: `d_steps` discriminator updates (Algorithm 1's k), then
one generator update. With `loss="minimax"` the generator descends log(1 - D(G(z))) exactly
as in Eq. 1; with `loss="non_saturating"` (the default, Section 3 of the paper) it ascends
log D(G(z)) instead, which has the same fixed point but strong gradients early in training,
when D rejects every generated sample and log(1 - D(G(z))) saturates.

The data is a 2-D ring of Gaussians (`ml.gan.datasets`), the mode-collapse benchmark of Metz et al.
2017 and Lin et al. 2018 (PacGAN), evaluated with `ml.gan.metrics.mode_coverage`: how many of the
modes the generator reaches, and which fraction of its samples lie within 3 standard
deviations of a mode. The ring's modes are tiny (std 0.01 at radius 1), where a vanilla GAN
collapses easily; the defaults are what makes the plain algorithm cover them, all of it common
practice rather than a change of objective:

- batch normalisation in the generator's hidden layers (DCGAN, Radford et al. 2016, and the
  PacGAN ring experiments), a 2-D latent and a four-layer ReLU generator, so the generator can
  cut its noise into eight sharply separated pieces;
- Adam with beta1 = 0.5 (DCGAN), and large batches (512), so every batch shows the
  discriminator every mode and a missing mode is penalised within one update;
- step sizes that decay linearly to zero, so the generator stops circling each mode and
  settles within its 0.01 width (see `learning_rate_factor`).

With them, 2,000 generator steps of seed 0 reach all 8 modes with 86% of the samples within
3 std (tests/ml/test_gan.py); the default 5,000 steps do better.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F

from ml.core.algorithm import Algorithm
from ml.core.errors import QueryError, TrainingStopped
from ml.core.hooks import Hooks
from ml.core.model import TrainedModel
from ml.core.nets import Activation, activation, mlp
from ml.core.seeding import resolve_device, seed_everything
from ml.core.versions import library_versions
from ml.gan.datasets import DatasetSpec, RingDataset
from ml.gan.metrics import mode_coverage

MAX_SAMPLES = 10_000
LOG_INTERVAL = 100  # generator steps between loss metrics and progress reports

Width = Annotated[int, Field(ge=1, le=4096)]


# -- config ------------------------------------------------------------------------------------
class GANConfig(BaseModel):
    """Hyper-parameters of a GAN run; the defaults capture all 8 modes of the default ring."""

    model_config = ConfigDict(extra="forbid")

    dataset: DatasetSpec = Field(
        default_factory=RingDataset, description="The data distribution to learn."
    )
    loss: Literal["non_saturating", "minimax"] = Field(
        "non_saturating",
        description="Generator objective: maximise log D(G(z)) (non_saturating) or minimise "
        "log(1 - D(G(z))) (minimax, Eq. 1 of the paper).",
    )
    latent_dim: int = Field(2, ge=1, le=512, description="Size of the noise vector z.")
    generator_hidden: list[Width] = Field(
        default_factory=lambda: [128, 128, 128, 128],
        min_length=1,
        max_length=8,
        description="Hidden layer widths of the generator.",
    )
    generator_batch_norm: bool = Field(
        True, description="Batch normalisation after each hidden layer of the generator."
    )
    discriminator_hidden: list[Width] = Field(
        default_factory=lambda: [128, 128],
        min_length=1,
        max_length=8,
        description="Hidden layer widths of the discriminator.",
    )
    activation: Activation = Field("relu", description="Hidden-layer activation of both networks.")
    batch_size: int = Field(
        512,
        ge=2,
        le=8192,
        description="Real and generated samples per update (batch norm needs 2).",
    )
    total_steps: int = Field(5000, ge=1, le=1_000_000, description="Number of generator updates.")
    d_steps: int = Field(
        1, ge=1, le=10, description="Discriminator updates per generator update (k)."
    )
    learning_rate_g: float = Field(1e-3, gt=0.0, le=1.0, description="Adam step size of G.")
    learning_rate_d: float = Field(1e-3, gt=0.0, le=1.0, description="Adam step size of D.")
    learning_rate_schedule: Literal["linear", "constant"] = Field(
        "linear",
        description="linear: both step sizes decay linearly to zero over total_steps, so the "
        "samples settle onto the modes; constant: they stay fixed.",
    )
    beta1: float = Field(0.5, ge=0.0, lt=1.0, description="Adam beta1 (DCGAN's 0.5).")
    beta2: float = Field(0.999, ge=0.0, lt=1.0, description="Adam beta2.")
    checkpoint_interval: int = Field(
        1000, ge=1, le=1_000_000, description="Generator steps between checkpoints."
    )
    eval_interval: int = Field(
        500, ge=1, le=1_000_000, description="Generator steps between mode-coverage evals."
    )
    eval_samples: int = Field(
        2500, ge=1, le=MAX_SAMPLES, description="Generated samples per evaluation."
    )


# -- networks ----------------------------------------------------------------------------------
def make_generator(config: GANConfig) -> nn.Sequential:
    """z (latent_dim) -> x (data_dim): Linear -> [BatchNorm] -> activation per hidden layer, and
    a linear output, since the data is not bounded to [-1, 1].

    Batch normalisation in the generator (as in DCGAN and the PacGAN experiments) keeps each
    hidden unit spread over the batch; without it the generator collapses onto one or two
    modes of the ring within a few hundred steps.
    """
    layers: list[nn.Module] = []
    last = config.latent_dim
    for width in config.generator_hidden:
        layers.append(nn.Linear(last, width))
        if config.generator_batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(activation(config.activation))
        last = width
    layers.append(nn.Linear(last, config.dataset.data_dim))
    return nn.Sequential(*layers)


def make_discriminator(config: GANConfig) -> nn.Sequential:
    """x (data_dim) -> one logit; D(x) = sigmoid(logit) is the probability that x is real."""
    return mlp(config.dataset.data_dim, config.discriminator_hidden, 1, act=config.activation)


def learning_rate_factor(config: GANConfig, step: int) -> float:
    """Multiplier of both learning rates before generator step `step + 1`.

    The ring's modes are 0.01 wide, and with a constant step size Adam keeps the generator
    circling each mode at a distance set by the step size (the unregularised GAN does not
    converge locally on such peaked data; Mescheder et al. 2018). Decaying the step size to
    zero lets the samples settle onto the modes.
    """
    if config.learning_rate_schedule == "constant":
        return 1.0
    return 1.0 - step / config.total_steps


# -- losses (all in logits, so log(sigmoid) never underflows) ----------------------------------
def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))]: D ascends Eq. 1."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "minimax":
        # E[log(1 - D(G(z)))] = -E[softplus(logit)]; G descends it (Eq. 1).
        return -F.softplus(fake_logits).mean()
    # -E[log D(G(z))] = E[softplus(-logit)]: same fixed point, no saturation.
    return F.softplus(-fake_logits).mean()


def evaluate(
    generator: nn.Module, config: GANConfig, seed: int, device: torch.device
) -> dict[str, Any]:
    """Mode coverage of `eval_samples` generated points, always from the same noise."""
    noise = torch.Generator().manual_seed(seed)
    z = torch.randn(config.eval_samples, config.latent_dim, generator=noise).to(device)
    was_training = generator.training
    generator.eval()
    with torch.no_grad():
        samples = generator(z).cpu().numpy()
    generator.train(was_training)
    dataset = config.dataset
    return mode_coverage(samples, dataset.means(), dataset.std)


# -- training ----------------------------------------------------------------------------------
def train(
    config: GANConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
) -> GANModel:
    """Algorithm 1 of Goodfellow et al. 2014 with Adam; returns the trained generator."""
    rng = seed_everything(seed)
    dev = resolve_device(device)
    generator = make_generator(config).to(dev)
    discriminator = make_discriminator(config).to(dev)
    betas = (config.beta1, config.beta2)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.learning_rate_g, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.learning_rate_d, betas=betas)
    # The noise has its own generator (on the training device), so its state can be saved.
    noise = torch.Generator(device=dev).manual_seed(seed)

    step = 0
    last_eval: dict[str, Any] | None = None
    if resume is not None:
        step = int(resume["step"])
        generator.load_state_dict(resume["generator"])
        discriminator.load_state_dict(resume["discriminator"])
        opt_g.load_state_dict(resume["opt_g"])
        opt_d.load_state_dict(resume["opt_d"])
        noise.set_state(resume["noise_rng"].cpu())
        rng.bit_generator.state = resume["data_rng"]
        torch.set_rng_state(resume["torch_rng"].cpu())
        last_eval = resume["last_eval"]

    def checkpoint() -> dict[str, Any]:
        # Copies, not views of the live tensors, so a kept checkpoint does not move on.
        return copy.deepcopy(
            {
                "step": step,
                "generator": generator.state_dict(),
                "discriminator": discriminator.state_dict(),
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "noise_rng": noise.get_state(),
                "data_rng": rng.bit_generator.state,  # a dict of str and int
                "torch_rng": torch.get_rng_state(),
                "last_eval": last_eval,
            }
        )

    def sample_noise(n: int) -> torch.Tensor:
        return torch.randn(n, config.latent_dim, generator=noise, device=dev)

    d_losses: list[torch.Tensor] = []
    g_losses: list[torch.Tensor] = []
    hooks.on_progress(step, config.total_steps)
    while step < config.total_steps:
        if hooks.should_stop():
            hooks.on_checkpoint(checkpoint())
            raise TrainingStopped(step)

        factor = learning_rate_factor(config, step)
        for opt, base in ((opt_g, config.learning_rate_g), (opt_d, config.learning_rate_d)):
            for group in opt.param_groups:
                group["lr"] = base * factor

        # k discriminator steps: ascend log D(x) + log(1 - D(G(z))).
        for _ in range(config.d_steps):
            real = torch.from_numpy(config.dataset.sample(config.batch_size, rng)).to(dev)
            with torch.no_grad():
                fake = generator(sample_noise(config.batch_size))
            d_loss = discriminator_loss(discriminator(real), discriminator(fake))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()

        # One generator step; D's gradients are computed but never applied.
        g_loss = generator_loss(
            discriminator(generator(sample_noise(config.batch_size))), config.loss
        )
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        step += 1

        # Keep losses on the device; one sync per LOG_INTERVAL steps instead of one per step.
        d_losses.append(d_loss.detach())
        g_losses.append(g_loss.detach())
        if step % LOG_INTERVAL == 0 or step == config.total_steps:
            hooks.on_metrics(
                step,
                {
                    "losses/discriminator": torch.stack(d_losses).mean().item(),
                    "losses/generator": torch.stack(g_losses).mean().item(),
                },
            )
            d_losses.clear()
            g_losses.clear()
            hooks.on_progress(step, config.total_steps)
        if step % config.eval_interval == 0 or step == config.total_steps:
            last_eval = evaluate(generator, config, seed, dev)
            hooks.on_metrics(
                step,
                {"eval/modes": last_eval["modes"], "eval/high_quality": last_eval["high_quality"]},
            )
        if step % config.checkpoint_interval == 0 and step < config.total_steps:
            hooks.on_checkpoint(checkpoint())

    if last_eval is None:  # resumed from a checkpoint taken at the last step
        last_eval = evaluate(generator, config, seed, dev)
    metadata = {
        "kind": GANModel.kind,
        "algorithm": "gan",
        "shapes": {"latent_dim": config.latent_dim, "data_dim": config.dataset.data_dim},
        "config": config.model_dump(mode="json"),
        "seed": seed,
        "versions": library_versions(),
        "summary": {
            "steps": step,
            "modes": last_eval["modes"],
            "n_modes": config.dataset.n_modes,
            "high_quality": last_eval["high_quality"],
            "per_mode": last_eval["per_mode"],
        },
    }
    return GANModel(metadata, generator.cpu().eval())


# -- model -------------------------------------------------------------------------------------
class GANModel(TrainedModel):
    """A trained generator: answers `samples`, points drawn from the learned distribution."""

    kind: ClassVar[str] = "gan"
    queries: ClassVar[tuple[str, ...]] = ("samples",)

    def __init__(self, metadata: dict[str, Any], generator: nn.Module) -> None:
        super().__init__(metadata)
        self.generator = generator

    @property
    def latent_dim(self) -> int:
        return int(self.metadata["shapes"]["latent_dim"])

    def state(self) -> dict[str, Any]:
        return {"generator": self.generator.state_dict()}

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> GANModel:
        config = GANConfig.model_validate(metadata["config"])
        generator = make_generator(config)
        generator.load_state_dict(state["generator"])
        return cls(metadata, generator.eval())

    def samples(self, n: int, seed: int | None = None) -> np.ndarray:
        """`n` generated points, (n, data_dim) float32; the same `seed` gives the same points,
        `seed=None` fresh ones."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
            raise QueryError(
                f"'n' must be an integer from 1 to {MAX_SAMPLES}, got {n!r}", field="n"
            )
        noise = torch.Generator()
        if seed is None:
            noise.seed()  # fresh entropy from the OS
        elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise QueryError(
                f"'seed' must be null or an integer from 0 to 2**63 - 1, got {seed!r}",
                field="seed",
            )
        else:
            noise.manual_seed(seed)
        z = torch.randn(n, self.latent_dim, generator=noise)
        with torch.no_grad():
            return self.generator(z).numpy()


ALGORITHM = Algorithm(
    name="gan",
    family="gan",
    description="Generative adversarial network (Goodfellow et al. 2014) on a 2-D ring of "
    "Gaussians, with the non-saturating or the minimax generator loss.",
    config=GANConfig,
    train=train,
    model=GANModel,
    queue="gpu",
)
