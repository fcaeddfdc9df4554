"""Generative Adversarial Networks (Goodfellow et al. 2014, "Generative Adversarial Nets").

A generator G maps noise z ~ N(0, I) to data space; a discriminator D (here a logit) learns to
tell real samples from generated ones. The two play the minimax game

    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]                          (Eq. 1)

trained by alternating gradient steps: `d_steps` discriminator updates (Algorithm 1's k), then
one generator update. With `loss="minimax"` the generator descends log(1 - D(G(z))) exactly
as in Eq. 1; with `loss="non_saturating"` (the default, Section 3 of the paper) it ascends
log D(G(z)) instead, which has the same fixed point but strong gradients early in training,
when D rejects every generated sample and log(1 - D(G(z))) saturates.

The data is a 2-D ring of Gaussians (`ml.gan.datasets`), the mode-collapse benchmark of Metz et
al. 2017 and Lin et al. 2018 (PacGAN), evaluated with `ml.gan.metrics.mode_coverage`: how many
of the modes the generator reaches, and which fraction of its samples lie within 3 standard
deviations of a mode. It may instead be a user's own points (an uploaded `samples` dataset,
rows x[N, d]), evaluated by the kernel two-sample distance `ml.gan.metrics.mmd_rbf`.

The ring's modes are tiny (std 0.01 at radius 1), where a vanilla GAN collapses easily; the
defaults are what makes the plain algorithm cover them, all of it common practice rather than
a change of objective:

- batch normalisation in the generator's hidden layers (DCGAN, Radford et al. 2016, and the
  PacGAN ring experiments), a 2-D latent and a four-layer ReLU generator, so the generator can
  cut its noise into eight sharply separated pieces;
- Adam with beta1 = 0.5 (DCGAN), and large batches (512), so every batch shows the
  discriminator every mode and a missing mode is penalised within one update;
- step sizes that decay linearly to zero, so the generator stops circling each mode and
  settles within its 0.01 width (see `learning_rate_factor`).

With them, 2,000 generator steps of seed 0 reach all 8 modes with about 89% of the samples
within 3 std (tests/ml/gan/test_gan.py); the default 5,000 steps do better.

A discriminator whose loss stays near 0 has won outright, and the generator's gradients
vanish (Arjovsky & Bottou 2017): the run warns "discriminator_overpowers". The model keeps
both networks: the generator draws samples, the discriminator scores points.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F

from ml.core.algorithm import Algorithm
from ml.core.cost import (
    CALL_OVERHEAD,
    FORWARD,
    TRAIN,
    UPDATE_OVERHEAD,
    Cost,
    dataset_summary,
    mlp_params,
)
from ml.core.errors import QueryError
from ml.core.health import Suspicion
from ml.core.hooks import Hooks
from ml.core.metadata import model_metadata
from ml.core.model import TrainedModel
from ml.core.nets import Activation, activation, mlp
from ml.core.optim import adam, set_learning_rate
from ml.core.schedules import linear
from ml.core.seeding import (
    Stream,
    derived_seed,
    numpy_rng,
    resolve_device,
    seeded_torch,
    torch_rng,
)
from ml.core.training import Run
from ml.gan.datasets import DatasetSpec, RealData, RingDataset, real_data
from ml.gan.metrics import mmd_rbf, mode_coverage

MAX_SAMPLES = 10_000
MMD_POINTS = 1_000  # points of each side in an MMD evaluation (its cost grows as their square)
LOG_INTERVAL = 100  # generator steps between loss metrics and progress reports

Width = Annotated[int, Field(ge=1, le=4096)]

DISCRIMINATOR_OVERPOWERS = Suspicion(
    code="discriminator_overpowers",
    message="the discriminator's loss has stayed near 0 for several hundred steps: it tells "
    "real from generated samples apart perfectly, so the generator's gradients vanish "
    "(minimax) or become noise; try a smaller learning_rate_d, fewer d_steps, or "
    "loss='non_saturating'",
    metric="losses/discriminator",
    test=lambda loss: loss < 0.05,
    patience=3,
)


# -- config ------------------------------------------------------------------------------------
class GANConfig(BaseModel):
    """Hyper-parameters of a GAN run; the defaults capture all 8 modes of the default ring."""

    model_config = ConfigDict(extra="forbid")

    dataset: DatasetSpec = Field(
        default_factory=RingDataset,
        description="The data to learn: a ring of Gaussians (kind 'ring') or an uploaded "
        "samples dataset (kind 'uploaded', rows x[N, d]).",
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
def make_generator(config: GANConfig, data_dim: int) -> nn.Sequential:
    """z [B, latent_dim] -> x [B, data_dim]: Linear -> [BatchNorm] -> activation per hidden
    layer, and a linear output, since the data is not bounded to [-1, 1].

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
    layers.append(nn.Linear(last, data_dim))
    return nn.Sequential(*layers)


def make_discriminator(config: GANConfig, data_dim: int) -> nn.Sequential:
    """x [B, data_dim] -> logit [B, 1]; D(x) = sigmoid(logit), the probability x is real."""
    return mlp(data_dim, config.discriminator_hidden, 1, act=config.activation)


def learning_rate_factor(config: GANConfig, step: int) -> float:
    """Multiplier of both learning rates before generator step `step + 1`.

    The ring's modes are 0.01 wide, and with a constant step size Adam keeps the generator
    circling each mode at a distance set by the step size (the unregularised GAN does not
    converge locally on such peaked data; Mescheder et al. 2018). Decaying the step size to
    zero lets the samples settle onto the modes.
    """
    if config.learning_rate_schedule == "constant":
        return 1.0
    return linear(step, start=1.0, end=0.0, duration=config.total_steps)


# -- cost --------------------------------------------------------------------------------------
# Features of an uploaded dataset whose summary the estimate is not given (a 32x32 image).
UNKNOWN_DATA_DIM = 1024


def cost(config: GANConfig, *, datasets: Mapping[str, Any] | None = None) -> Cost:
    """Estimated operations of a run (`ml.core.cost`), with B = batch_size and G, D the
    generator's and discriminator's parameters (from the widths, batch norm included):

    - a discriminator update: G forward on B noise vectors, D forward and backward on B real
      and B generated points: B (2 G + 12 D), plus an optimiser step's overhead;
    - a generator update: forward and backward through G and D: 6 B (G + D), plus overhead;
    - an evaluation: eval_samples forward passes of G, and mode coverage (ring) or the MMD
      of up to 1,000 points against as many real ones (uploaded data: ~n^2 (6 d + 60));

    total = total_steps x (d_steps x D update + G update) + evaluations; per step (what
    sits between two stop checks: one `round` update, then the generator's, then an
    evaluation) = D update + G update + evaluation. The data dimension d is 2 for the ring,
    an uploaded dataset's `n_features` when `datasets` has its summary, else
    `UNKNOWN_DATA_DIM`.
    """
    if isinstance(config.dataset, RingDataset):
        data_dim = config.dataset.data_dim
    else:
        summary = dataset_summary(datasets, config.dataset.id)
        data_dim = int(summary.get("n_features", UNKNOWN_DATA_DIM))
    g = mlp_params([config.latent_dim, *config.generator_hidden, data_dim])
    if config.generator_batch_norm:
        g += 2 * sum(config.generator_hidden)
    d = mlp_params([data_dim, *config.discriminator_hidden, 1])
    batch = config.batch_size
    d_update = batch * (FORWARD * g + 2 * TRAIN * d) + UPDATE_OVERHEAD
    g_update = batch * TRAIN * (g + d) + UPDATE_OVERHEAD
    evaluation = config.eval_samples * FORWARD * g + CALL_OVERHEAD
    if isinstance(config.dataset, RingDataset):
        evaluation += config.eval_samples * config.dataset.n_modes * 8 * data_dim
    else:
        n = min(config.eval_samples, MMD_POINTS)
        evaluation += n * n * (6 * data_dim + 60)
    evaluations = config.total_steps // config.eval_interval + 1
    return Cost(
        total=config.total_steps * (config.d_steps * d_update + g_update)
        + evaluations * evaluation,
        per_step=d_update + g_update + evaluation,
        total_fields=("total_steps", "batch_size", "generator_hidden", "discriminator_hidden"),
        step_fields=("batch_size", "generator_hidden", "discriminator_hidden", "eval_samples"),
    )


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


# -- update steps (Algorithm 1 of the paper: k steps of D, then one of G) ----------------------
def discriminator_step(
    discriminator: nn.Module,
    optimizer: torch.optim.Optimizer,
    real: torch.Tensor,
    fake: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """One ascent step of D on log D(x) + log(1 - D(G(z))); its metrics, on the device."""
    real_logits, fake_logits = discriminator(real), discriminator(fake)  # [B, 1] each
    loss = discriminator_loss(real_logits, fake_logits)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {
        "losses/discriminator": loss.detach(),
        "gan/d_real": torch.sigmoid(real_logits.detach()).mean(),
        "gan/d_fake": torch.sigmoid(fake_logits.detach()).mean(),
    }


def generator_step(
    generator: nn.Module,
    discriminator: nn.Module,
    optimizer: torch.optim.Optimizer,
    z: torch.Tensor,
    loss: str,
) -> torch.Tensor:
    """One step of G on its loss; D's gradients are computed but never applied."""
    g_loss = generator_loss(discriminator(generator(z)), loss)
    optimizer.zero_grad(set_to_none=True)
    g_loss.backward()
    optimizer.step()
    return g_loss.detach()


def generate(generator: nn.Module, n: int, latent_dim: int, noise: torch.Generator) -> np.ndarray:
    """x [n, data_dim] float32 from z ~ N(0, I) drawn with `noise` (a CPU generator), with
    batch norm in inference mode."""
    z = torch.randn(n, latent_dim, generator=noise)  # z[n, latent_dim]
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    with torch.no_grad():
        samples = generator(z.to(device)).cpu().numpy()
    generator.train(was_training)
    return samples


def evaluate(generator: nn.Module, config: GANConfig, data: RealData, seed: int) -> dict[str, Any]:
    """`eval_samples` generated points, always from the same noise, judged by mode coverage
    (the ring) or by the MMD to the data (uploaded samples): {"metrics", "summary"}."""
    noise = torch_rng(derived_seed(seed, Stream.EVAL))
    samples = generate(generator, config.eval_samples, config.latent_dim, noise)
    if isinstance(config.dataset, RingDataset):
        coverage = mode_coverage(samples, config.dataset.means(), config.dataset.std)
        metrics = {"eval/modes": coverage["modes"], "eval/high_quality": coverage["high_quality"]}
        return {"metrics": metrics, "summary": {**coverage, "n_modes": config.dataset.n_modes}}
    n = min(config.eval_samples, MMD_POINTS)
    real = data.sample(n, np.random.default_rng(derived_seed(seed, Stream.EVAL)))
    mmd = mmd_rbf(samples[:n], real)
    return {"metrics": {"eval/mmd": mmd}, "summary": {"mmd": mmd}}


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
    """Algorithm 1 of Goodfellow et al. 2014 with Adam; returns both networks as a model."""
    dev = resolve_device(device)
    data = real_data(config.dataset, datasets)  # data.sample(n, rng) -> x[n, data_dim]
    with seeded_torch(seed):
        generator = make_generator(config, data.data_dim).to(dev)
        discriminator = make_discriminator(config, data.data_dim).to(dev)
    betas = (config.beta1, config.beta2)
    opt_g = adam(generator.parameters(), lr=config.learning_rate_g, betas=betas, device=dev)
    opt_d = adam(discriminator.parameters(), lr=config.learning_rate_d, betas=betas, device=dev)
    data_rng = numpy_rng(seed)  # minibatches of real data
    noise = torch_rng(derived_seed(seed, Stream.NOISE), dev)  # z, drawn on the device

    run = Run(hooks, config, log_interval=LOG_INTERVAL, suspicions=[DISCRIMINATOR_OVERPOWERS])
    run.track(
        generator=generator,
        discriminator=discriminator,
        opt_g=opt_g,
        opt_d=opt_d,
        data_rng=data_rng,
        noise_rng=noise,
    )
    run.start(resume)
    batch = config.batch_size
    while run.step < config.total_steps:
        run.stop_if_asked()
        factor = learning_rate_factor(config, run.step)
        set_learning_rate(opt_g, config.learning_rate_g * factor)
        set_learning_rate(opt_d, config.learning_rate_d * factor)

        for _ in run.round(config.d_steps):  # a stop may come between two of them
            real = torch.from_numpy(data.sample(batch, data_rng)).to(dev)  # x[B, data_dim]
            with torch.no_grad():
                fake = generator(torch.randn(batch, config.latent_dim, generator=noise, device=dev))
            run.metrics.add_all(discriminator_step(discriminator, opt_d, real, fake))
        z = torch.randn(batch, config.latent_dim, generator=noise, device=dev)  # z[B, latent]
        g_loss = generator_step(generator, discriminator, opt_g, z, config.loss)
        run.metrics.add("losses/generator", g_loss)
        run.metrics.set("charts/learning_rate_factor", factor)
        run.advance()

        if run.step % config.eval_interval == 0 and run.step < config.total_steps:
            run.report(evaluate(generator, config, data, seed)["metrics"])
        run.end_step()

    final = evaluate(generator, config, data, seed)
    run.finish(final["metrics"])
    metadata = model_metadata(
        kind=GANModel.kind,
        algorithm="gan",
        config=config,
        seed=seed,
        shapes={"latent_dim": config.latent_dim, "data_dim": data.data_dim},
        summary={"steps": run.step, **final["summary"]},
    )
    return GANModel(metadata, generator.cpu().eval(), discriminator.cpu().eval())


# -- model -------------------------------------------------------------------------------------
class GANModel(TrainedModel):
    """A trained GAN: the generator draws samples, the discriminator scores points."""

    kind: ClassVar[str] = "gan"
    generator: nn.Module  # z [B, latent_dim] -> x [B, data_dim]
    discriminator: nn.Module | None  # x [B, data_dim] -> logit [B, 1]; None in old files

    def __init__(
        self, metadata: dict[str, Any], generator: nn.Module, discriminator: nn.Module | None
    ) -> None:
        super().__init__(metadata)
        self.generator = generator
        # None only for model files saved before models kept their discriminator.
        self.discriminator = discriminator

    @property
    def latent_dim(self) -> int:
        return int(self.metadata["shapes"]["latent_dim"])

    @property
    def data_dim(self) -> int:
        return int(self.metadata["shapes"]["data_dim"])

    def state(self) -> dict[str, Any]:
        return {
            "generator": self.generator.state_dict(),
            **(
                {"discriminator": self.discriminator.state_dict()}
                if self.discriminator is not None
                else {}
            ),
        }

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> GANModel:
        config = GANConfig.model_validate(metadata["config"])
        data_dim = int(metadata["shapes"]["data_dim"])
        generator = make_generator(config, data_dim)
        generator.load_state_dict(state["generator"])
        if "discriminator" not in state:  # saved before models kept their discriminator
            return cls(metadata, generator.eval(), None)
        discriminator = make_discriminator(config, data_dim)
        discriminator.load_state_dict(state["discriminator"])
        return cls(metadata, generator.eval(), discriminator.eval())

    def generate(self, n: int, seed: int | None = None) -> np.ndarray:
        """x [n, data_dim] float32 drawn from the learned distribution; the same `seed` gives
        the same points, `seed=None` fresh ones (entropy from the OS)."""
        noise = torch.Generator()
        if seed is None:
            noise.seed()
        else:
            noise.manual_seed(seed)
        return generate(self.generator, n, self.latent_dim, noise)

    def discriminate(self, x: np.ndarray) -> np.ndarray:
        """D(x) [n] for points x [n, data_dim]: the probability the discriminator gives to x
        being real data."""
        if self.discriminator is None:
            raise QueryError(
                "this model file was saved without its discriminator; retrain it to score points",
                field="query",
            )
        points = torch.as_tensor(np.asarray(x, dtype=np.float32).reshape(-1, self.data_dim))
        with torch.no_grad():
            logits = self.discriminator(points)  # [n, 1]
        return torch.sigmoid(logits).reshape(-1).numpy().astype(np.float64)


ALGORITHM = Algorithm(
    name="gan",
    family="gan",
    description="Generative adversarial network (Goodfellow et al. 2014) on a 2-D ring of "
    "Gaussians or on uploaded samples, with the non-saturating or the minimax generator loss.",
    config=GANConfig,
    train=train,
    model=GANModel,
    queue="gpu",
    cost=cost,
    dataset_kinds=("samples",),
)
