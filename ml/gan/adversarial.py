"""The adversarial loop every GAN variant shares: what differs is the variant's loss.

A variant (`ml/gan/gan.py`, `wgan.py`, `wgan_gp.py`) is its config, its discriminator (or
critic) loss and generator loss, its optimizers, and what it does after a discriminator step
(WGAN's weight clipping); it hands them to `train` as a `Variant`. The rest is here, once,
split as the `imitation` library splits its adversarial trainers:

- `train_discriminator`: one update of D on a real and a generated batch, and its metrics;
- `train_generator`: one update of G through D;
- `train`: `d_steps` discriminator updates per generator update (Algorithm 1 of Goodfellow
  et al. 2014, Algorithm 1 of Arjovsky et al. 2017), on `ml.core.training.Run`, with
  checkpoints, metrics, stops and evaluations.

Metrics (`ml.core.metrics`): `losses/discriminator` and `losses/generator` (what each
update descends); `gan/d_real` and `gan/d_fake`, D's mean output on the real and the
generated batch (a probability for a discriminator, the unbounded score for a critic);
`gan/d_accuracy`, the fraction of the two batches D tells apart (a discriminator: real
scored above 1/2, generated below; a critic has no such threshold, since adding a constant
to it changes nothing, so a point counts as called real when its score is above the mean
score of the two batches together); plus what a variant's loss adds (`gan/wasserstein`,
`gan/gradient_penalty`). Evaluations (`eval/`) judge `eval_samples` generated points by mode
coverage on the 2-D mixtures (`eval/modes`, `eval/high_quality`, `eval/reverse_kl`) and by
the MMD to real data otherwise (`eval/mmd`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from ml.core.cost import (
    CALL_OVERHEAD,
    FORWARD,
    TRAIN,
    UPDATE_OVERHEAD,
    Cost,
    dataset_summary,
    mlp_params,
)
from ml.core.errors import ConfigError, QueryError
from ml.core.health import Suspicion
from ml.core.hooks import Hooks
from ml.core.metadata import model_metadata
from ml.core.model import TrainedModel
from ml.core.nets import ACTIVATION_CHOICES, Activation
from ml.core.optim import set_learning_rate
from ml.core.schedules import linear
from ml.core.seeding import (
    Stream,
    derived_seed,
    numpy_rng,
    resolve_device,
    seeded_torch,
    torch_rng,
)
from ml.core.training import KeepBest, Run
from ml.explain.targets import Explained, Reshaped
from ml.gan.datasets import (
    DatasetSpec,
    DigitsDataset,
    GridDataset,
    RealData,
    RingDataset,
    SwissRollDataset,
    real_data,
)
from ml.gan.digits import IMAGE_SHAPE, digits_classifier, digits_quality
from ml.gan.health import HealthCode, coverage_falling, discriminator_wins, mode_collapse
from ml.gan.metrics import diversity, mmd_rbf, mode_coverage
from ml.gan.networks import make_discriminator, make_generator, network_macs

MAX_SAMPLES = 10_000
MMD_POINTS = 1_000  # points of each side in an MMD evaluation (its cost grows as their square)
LOG_INTERVAL = 100  # generator steps between loss metrics and progress reports
# Features of an uploaded dataset whose summary the cost estimate is not given (a 32x32 image).
UNKNOWN_DATA_DIM = 1024
MIN_DIGITS_EVAL = 20  # generated digits per evaluation the image metrics (KID) need at least
DIGITS_KID_SUBSETS = 20  # KID's subsets in an evaluation during training
DIGITS_CLASSIFIER_MACS = 340_000  # per image, a forward pass of ml.gan.digits.DigitsNet
DIGITS_HELDOUT = 360  # the held-out digits the metrics compare with
DIVERSITY_POINTS = 500  # generated and real points the diversity check compares

Width = Annotated[int, Field(ge=1, le=4096)]


# -- config ------------------------------------------------------------------------------------
class AdversarialConfig(BaseModel):
    """The fields every variant has; a variant's config adds its own and may change the
    defaults (its file says which, and why)."""

    model_config = ConfigDict(extra="forbid")

    dataset: DatasetSpec = Field(
        default_factory=RingDataset,
        description="The data to learn: a ring of Gaussians (kind 'ring', PacGAN's ring8 by "
        "default), a grid of Gaussians (kind 'grid', PacGAN's grid25 by default), a swiss "
        "roll (kind 'swissroll'), scikit-learn's 8x8 digits with labels (kind 'digits') or an "
        "uploaded samples dataset (kind 'uploaded': vectors x[N, d] or images x[N, C, H, W] "
        "in [-1, 1], optionally labelled y[N]). A built-in set may be named alone: "
        '"ring8", "grid25", "swissroll", "digits".',
    )
    architecture: Literal["mlp", "conv", "auto"] = Field(
        "mlp",
        description="mlp: fully connected networks (generator_hidden, discriminator_hidden); "
        "conv: DCGAN's convolutional networks (generator_channels, discriminator_channels), "
        "for square images of side 8, 16, 32 or 64; auto: conv for such images, mlp otherwise.",
    )
    generator_channels: list[Width] = Field(
        default_factory=lambda: [128, 64, 32],
        min_length=1,
        max_length=4,
        description="Conv generator: channels at 4x4, 8x8, ...; an image of side 4 * 2^k uses "
        "the first k.",
    )
    discriminator_channels: list[Width] = Field(
        default_factory=lambda: [32, 64, 128],
        min_length=1,
        max_length=4,
        description="Conv discriminator: channels after each stride-2 convolution; an image "
        "of side 4 * 2^k uses the first k.",
    )
    discriminator_batch_norm: bool = Field(
        True,
        description="Conv discriminator: batch normalisation after every convolution but the "
        "first (DCGAN); the MLP discriminator never has it.",
    )
    conditional: bool = Field(
        False,
        description="Condition both networks on the data's class labels (Mirza & Osindero "
        "2014): a label embedding joins z and the discriminator's input. Needs labelled data.",
    )
    label_embedding_dim: int = Field(
        16, ge=1, le=256, description="Size of the learned label embedding (conditional)."
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
        description="Hidden layer widths of the discriminator (or critic).",
    )
    activation: Activation = Field(
        "relu",
        description=f"Hidden-layer activation of the generator (MLP or conv; its output is "
        f"always linear for the MLP, tanh for the conv one) and of the MLP discriminator "
        f"unless discriminator_activation is set: {ACTIVATION_CHOICES}.",
    )
    discriminator_activation: Activation | None = Field(
        None,
        description=f"Hidden-layer activation of the discriminator (critic) alone: "
        f"{ACTIVATION_CHOICES}. null: the conv discriminator keeps DCGAN's LeakyReLU with "
        f"slope 0.2 (Radford et al. 2015), the MLP one uses `activation`.",
    )
    batch_size: int = Field(
        512,
        ge=2,
        le=8192,
        description="Real and generated samples per update (batch norm needs 2).",
    )
    total_steps: int = Field(5000, ge=1, le=1_000_000, description="Number of generator updates.")
    d_steps: int = Field(
        1, ge=1, le=10, description="Discriminator (critic) updates per generator update."
    )
    learning_rate_g: float = Field(1e-3, gt=0.0, le=1.0, description="Step size of G.")
    learning_rate_d: float = Field(1e-3, gt=0.0, le=1.0, description="Step size of D.")
    learning_rate_schedule: Literal["linear", "constant"] = Field(
        "linear",
        description="linear: both step sizes decay linearly to zero over total_steps, so the "
        "samples settle onto the modes; constant: they stay fixed.",
    )
    checkpoint_interval: int = Field(
        1000, ge=1, le=1_000_000, description="Generator steps between checkpoints."
    )
    eval_interval: int = Field(
        500, ge=1, le=1_000_000, description="Generator steps between evaluations."
    )
    eval_samples: int = Field(
        2500, ge=1, le=MAX_SAMPLES, description="Generated samples per evaluation."
    )
    keep_best: bool = Field(
        True,
        description="Keep the generator of the best evaluation (by `quality`: modes and "
        "high-quality share on the 2-D mixtures, the Frechet distance on digits, the MMD "
        "otherwise) beside the last one; queries use the best unless they ask for the last.",
    )
    ema_decay: float | None = Field(
        None,
        ge=0.0,
        lt=1.0,
        description="If set (e.g. 0.999), evaluations judge, and the model keeps, an "
        "exponential moving average of the generator's weights rather than the weights "
        "themselves (Yazici et al. 2019); training still updates the generator itself.",
    )
    stop_on: list[HealthCode] = Field(
        default_factory=list,
        max_length=3,
        description="Health warnings that end training early instead of only being reported "
        "(discriminator_wins, mode_collapse, coverage_falling; see the job's warnings); the "
        "model then holds the best generator so far.",
    )


ConfigT = TypeVar("ConfigT", bound=AdversarialConfig)


# -- networks ----------------------------------------------------------------------------------
# `ml.gan.networks` builds them: z [B, latent_dim] -> x [B, data_dim] and x -> score [B, 1],
# MLP or conv, conditioned on labels [B] when the config says so. In the MLP generator, batch
# normalisation (as in DCGAN and the PacGAN experiments) keeps each hidden unit spread over
# the batch; without it the plain GAN collapses onto one or two modes of the ring within a
# few hundred steps. The MLP discriminator has no batch norm: it would couple the scores of a
# batch (and the gradient penalty is per point).


class WithLabels(nn.Module):
    """A conditional network with its labels bound, so a variant's loss calls it as net(x)."""

    def __init__(self, net: nn.Module, labels: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.labels = labels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.labels)


def bind(net: nn.Module, labels: torch.Tensor | None) -> nn.Module:
    """`net` called with `labels` (the network itself when there are none)."""
    return net if labels is None else WithLabels(net, labels)


def cycled_labels(n: int, n_classes: int) -> np.ndarray:
    """0, 1, ..., n_classes - 1, 0, 1, ...: n labels, every class as often as possible."""
    return (np.arange(n) % n_classes).astype(np.int64)


def learning_rate_factor(config: AdversarialConfig, step: int) -> float:
    """Multiplier of both learning rates before generator step `step + 1`.

    The 2-D modes are tiny (0.01 wide on the ring), and with a constant step size the
    generator keeps circling each mode at a distance set by the step size (the unregularised
    GAN does not converge locally on such peaked data; Mescheder et al. 2018). Decaying the
    step size to zero lets the samples settle onto the modes.
    """
    if config.learning_rate_schedule == "constant":
        return 1.0
    return linear(step, start=1.0, end=0.0, duration=config.total_steps)


# -- what a variant provides -------------------------------------------------------------------
@dataclass(frozen=True)
class DiscriminatorLoss:
    """What a variant's discriminator loss returns for one real and one generated batch."""

    loss: torch.Tensor  # the scalar D descends
    real_scores: torch.Tensor  # D's raw output on the real batch, [B, 1]
    fake_scores: torch.Tensor  # and on the generated batch, [B, 1]
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)  # e.g. gan/wasserstein


# loss(discriminator, real x[B, d], fake x[B, d], config, noise) -> DiscriminatorLoss
DiscriminatorLossFn = Callable[
    [nn.Module, torch.Tensor, torch.Tensor, ConfigT, torch.Generator], DiscriminatorLoss
]
# loss(D's scores of generated points [B, 1], config) -> the scalar G descends
GeneratorLossFn = Callable[[torch.Tensor, ConfigT], torch.Tensor]
# optimizers(config, generator, discriminator, device) -> (G's, D's)
OptimizersFn = Callable[
    [ConfigT, nn.Module, nn.Module, torch.device],
    tuple[torch.optim.Optimizer, torch.optim.Optimizer],
]


def no_op(discriminator: nn.Module, config: Any) -> None:
    """The `after_discriminator_step` of a variant with nothing to do there."""


@dataclass(frozen=True)
class Variant(Generic[ConfigT]):
    """A GAN variant, as the shared loop needs it."""

    name: str  # the algorithm's name, e.g. "wgan"
    model: type[AdversarialModel]
    discriminator_loss: DiscriminatorLossFn[ConfigT]
    generator_loss: GeneratorLossFn[ConfigT]
    optimizers: OptimizersFn[ConfigT]
    # "probability": D outputs a logit, D(x) = sigmoid(logit); "critic": an unbounded score.
    scores: Literal["probability", "critic"]
    # Called after every discriminator update (WGAN clips the critic's weights there).
    after_discriminator_step: Callable[[nn.Module, ConfigT], None] = no_op


def accuracy(
    real_scores: torch.Tensor, fake_scores: torch.Tensor, scores: Literal["probability", "critic"]
) -> torch.Tensor:
    """The fraction of the real and generated points (equally weighted) D calls right: real
    above the threshold, generated below; the threshold is logit 0 (D(x) = 1/2) for a
    discriminator, the mean score of both batches for a critic."""
    if scores == "probability":
        threshold = torch.zeros((), device=real_scores.device)
    else:
        threshold = torch.cat([real_scores, fake_scores]).mean()
    real_right = (real_scores > threshold).float().mean()
    fake_right = (fake_scores < threshold).float().mean()
    return (real_right + fake_right) / 2


def shown_scores(scores: torch.Tensor, kind: Literal["probability", "critic"]) -> torch.Tensor:
    """D's raw output as it is reported: D(x) = sigmoid(logit), or the critic's value."""
    return torch.sigmoid(scores) if kind == "probability" else scores


# -- update steps --------------------------------------------------------------------------------
def train_discriminator(
    variant: Variant[ConfigT],
    config: ConfigT,
    discriminator: nn.Module,
    optimizer: torch.optim.Optimizer,
    real: torch.Tensor,
    fake: torch.Tensor,
    noise: torch.Generator,
) -> dict[str, torch.Tensor]:
    """One update of D on the variant's loss; its metrics, on the device."""
    out = variant.discriminator_loss(discriminator, real, fake, config, noise)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    optimizer.step()
    variant.after_discriminator_step(
        discriminator.net if isinstance(discriminator, WithLabels) else discriminator, config
    )
    real_scores, fake_scores = out.real_scores.detach(), out.fake_scores.detach()
    return {
        "losses/discriminator": out.loss.detach(),
        "gan/d_real": shown_scores(real_scores, variant.scores).mean(),
        "gan/d_fake": shown_scores(fake_scores, variant.scores).mean(),
        "gan/d_accuracy": accuracy(real_scores, fake_scores, variant.scores),
        **{name: value.detach() for name, value in out.metrics.items()},
    }


def train_generator(
    variant: Variant[ConfigT],
    config: ConfigT,
    generator: nn.Module,
    discriminator: nn.Module,
    optimizer: torch.optim.Optimizer,
    z: torch.Tensor,
) -> torch.Tensor:
    """One update of G on the variant's loss; D's gradients are computed but never applied
    (its optimizer zeroes them before its next step)."""
    g_loss = variant.generator_loss(discriminator(generator(z)), config)
    optimizer.zero_grad(set_to_none=True)
    g_loss.backward()
    optimizer.step()
    return g_loss.detach()


# -- sampling and evaluation ---------------------------------------------------------------------
def generate(
    generator: nn.Module,
    n: int,
    latent_dim: int,
    noise: torch.Generator,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """x [n, data_dim] float32 from z ~ N(0, I) drawn with `noise` (a CPU generator), with
    batch norm in inference mode; `labels` [n] for a conditional generator."""
    z = torch.randn(n, latent_dim, generator=noise)  # z[n, latent_dim]
    return decode(generator, z, labels)


def decode(generator: nn.Module, z: torch.Tensor, labels: np.ndarray | None = None) -> np.ndarray:
    """x [n, data_dim] float32 = G(z) for latents z [n, latent_dim] (and labels [n] for a
    conditional generator), batch norm in inference mode, on the generator's device."""
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    y = None if labels is None else torch.as_tensor(labels, dtype=torch.int64, device=device)
    with torch.no_grad():
        samples = bind(generator, y)(z.to(device)).cpu().numpy()
    generator.train(was_training)
    return samples


def evaluate(
    generator: nn.Module,
    config: AdversarialConfig,
    data: RealData,
    seed: int,
    n_classes: int | None = None,
) -> dict[str, Any]:
    """`eval_samples` generated points, always from the same noise (a conditional generator:
    with the labels cycled), judged by mode coverage (the 2-D mixtures), by the digits
    classifier's metrics (digits; `ml.gan.digits.digits_quality`, with `eval/label_accuracy`
    for a conditional generator) or by the MMD to the data (swiss roll, uploaded samples),
    and always by their spread relative to the data's (`eval/diversity`, which the
    mode-collapse check reads): {"metrics", "summary"}."""
    noise = torch_rng(derived_seed(seed, Stream.EVAL))
    labels = None if n_classes is None else cycled_labels(config.eval_samples, n_classes)
    samples = generate(generator, config.eval_samples, config.latent_dim, noise, labels)
    quality = judge(samples, labels, config, data, seed)
    n = min(len(samples), DIVERSITY_POINTS)
    real = data.sample(n, numpy_rng(derived_seed(seed, Stream.EVAL)))
    spread = diversity(samples[:n], real)
    return {
        "metrics": {**quality["metrics"], "eval/diversity": spread},
        "summary": {**quality["summary"], "diversity": spread},
    }


def judge(
    samples: np.ndarray,
    labels: np.ndarray | None,
    config: AdversarialConfig,
    data: RealData,
    seed: int,
) -> dict[str, Any]:
    """The quality metrics of `evaluate` for the data's kind: {"metrics", "summary"}."""
    if isinstance(config.dataset, DigitsDataset):
        metrics = digits_quality(
            digits_classifier(),
            samples,
            rng=numpy_rng(derived_seed(seed, Stream.EVAL)),
            requested_labels=labels,
            kid_subsets=DIGITS_KID_SUBSETS,
        )
        summary = {name.removeprefix("eval/"): value for name, value in metrics.items()}
        return {"metrics": metrics, "summary": summary}
    if isinstance(config.dataset, RingDataset | GridDataset):
        coverage = mode_coverage(samples, config.dataset.means(), config.dataset.std)
        metrics = {
            "eval/modes": coverage["modes"],
            "eval/high_quality": coverage["high_quality"],
            "eval/reverse_kl": coverage["reverse_kl"],
        }
        return {"metrics": metrics, "summary": {**coverage, "n_modes": config.dataset.n_modes}}
    n = min(config.eval_samples, MMD_POINTS)
    real = data.sample(n, np.random.default_rng(derived_seed(seed, Stream.EVAL)))
    mmd = mmd_rbf(samples[:n], real)
    return {"metrics": {"eval/mmd": mmd}, "summary": {"mmd": mmd}}


def quality(metrics: Mapping[str, float]) -> float:
    """One number per evaluation, higher is better, by which the best generator is kept:
    on the 2-D mixtures the modes captured plus the high-quality share (a mode more always
    wins; the share breaks ties); on digits the share of samples classified as their
    requested label for a conditional generator (what it is for: an earlier generator with
    a lower Frechet distance but mixed-up classes is not better), else minus the Frechet
    distance of the classifier's features; otherwise minus the MMD to the data."""
    if "eval/modes" in metrics:
        return float(metrics["eval/modes"]) + float(metrics["eval/high_quality"])
    if "eval/label_accuracy" in metrics:
        return float(metrics["eval/label_accuracy"])
    if "eval/fd_digits" in metrics:
        return -float(metrics["eval/fd_digits"])
    return -float(metrics["eval/mmd"])


def health_checks(variant: Variant[Any], config: AdversarialConfig) -> list[Suspicion]:
    """The run's health checks (`ml.gan.health`), fresh for this run (one is stateful)."""
    checks = [discriminator_wins(variant.scores), mode_collapse()]
    if isinstance(config.dataset, RingDataset | GridDataset):
        checks.append(coverage_falling("eval/modes"))
    elif isinstance(config.dataset, DigitsDataset):
        checks.append(coverage_falling("eval/coverage"))
    return checks


def averaged(generator: nn.Module) -> nn.Module:
    """A copy of `generator` to hold the moving average of its weights."""
    average = copy.deepcopy(generator)
    average.requires_grad_(False)
    return average


def update_average(average: nn.Module, generator: nn.Module, decay: float) -> None:
    """average <- decay * average + (1 - decay) * generator, weight by weight; the buffers
    (batch norm's running statistics) are copied, since they are statistics of the
    generator's current outputs rather than weights to smooth."""
    with torch.no_grad():
        for mean, weight in zip(average.parameters(), generator.parameters(), strict=True):
            mean.lerp_(weight, 1.0 - decay)
        for mine, theirs in zip(average.buffers(), generator.buffers(), strict=True):
            mine.copy_(theirs)


def conditioning_classes(config: AdversarialConfig, data: RealData) -> int | None:
    """The number of classes a conditional run conditions on (None when not conditional)."""
    if not config.conditional:
        return None
    if data.n_classes is None:
        raise ConfigError(
            "conditional training needs labelled data (digits, or samples with y)",
            field="conditional",
        )
    return data.n_classes


# -- the loop ------------------------------------------------------------------------------------
def train(
    variant: Variant[ConfigT],
    config: ConfigT,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
) -> AdversarialModel:
    """`d_steps` updates of D, then one of G, `total_steps` times; returns both networks."""
    dev = resolve_device(device)
    data = real_data(config.dataset, datasets)  # data.sample(n, rng) -> x[n, data_dim]
    shape = data.sample_shape
    n_classes = conditioning_classes(config, data)
    if isinstance(config.dataset, DigitsDataset) and config.eval_samples < MIN_DIGITS_EVAL:
        raise ConfigError(
            f"the digits metrics need eval_samples >= {MIN_DIGITS_EVAL}", field="eval_samples"
        )
    with seeded_torch(seed):
        generator = make_generator(config, shape, n_classes).to(dev)
        discriminator = make_discriminator(config, shape, n_classes).to(dev)
    opt_g, opt_d = variant.optimizers(config, generator, discriminator, dev)
    data_rng = numpy_rng(seed)  # minibatches of real data
    noise = torch_rng(derived_seed(seed, Stream.NOISE), dev)  # z (and WGAN-GP's mixing), on dev
    # What evaluations judge and the model keeps: the generator, or the average of its weights.
    average = None if config.ema_decay is None else averaged(generator)
    judged = generator if average is None else average
    best = KeepBest("quality")  # the judged generator at its best evaluation

    run = Run(
        hooks,
        config,
        log_interval=LOG_INTERVAL,
        suspicions=health_checks(variant, config),
        stop_on=config.stop_on,
    )
    run.track(
        generator=generator,
        discriminator=discriminator,
        opt_g=opt_g,
        opt_d=opt_d,
        data_rng=data_rng,
        noise_rng=noise,
        best=best,
        **({} if average is None else {"average": average}),
    )
    run.start(resume)
    batch = config.batch_size
    while run.step < config.total_steps and not run.ended_early:
        run.stop_if_asked()
        factor = learning_rate_factor(config, run.step)
        set_learning_rate(opt_g, config.learning_rate_g * factor)
        set_learning_rate(opt_d, config.learning_rate_d * factor)

        labels = None  # y[B]: the real batch's labels, given to G and D alike (conditional)
        for _ in run.round(config.d_steps):  # a stop may come between two of them
            if n_classes is None:
                x = data.sample(batch, data_rng)
            else:
                x, y = data.sample_labelled(batch, data_rng)
                labels = torch.from_numpy(y).to(dev)
            real = torch.from_numpy(x).to(dev)  # x[B, data_dim]
            with torch.no_grad():
                z = torch.randn(batch, config.latent_dim, generator=noise, device=dev)
                fake = bind(generator, labels)(z)
            d = bind(discriminator, labels)
            run.metrics.add_all(train_discriminator(variant, config, d, opt_d, real, fake, noise))
        z = torch.randn(batch, config.latent_dim, generator=noise, device=dev)  # z[B, latent]
        g_loss = train_generator(
            variant, config, bind(generator, labels), bind(discriminator, labels), opt_g, z
        )
        run.metrics.add("losses/generator", g_loss)
        run.metrics.set("charts/learning_rate_factor", factor)
        if average is not None and config.ema_decay is not None:
            update_average(average, generator, config.ema_decay)
        run.advance()

        if run.step % config.eval_interval == 0 and run.step < config.total_steps:
            evaluation = evaluate(judged, config, data, seed, n_classes)["metrics"]
            if config.keep_best:
                best.offer(run.step, quality(evaluation), judged)
            run.report(evaluation)
        run.end_step()

    final = evaluate(judged, config, data, seed, n_classes)
    run.finish(final["metrics"])
    last = judged.cpu().eval()
    served, summary = last, {"steps": run.step, **final["summary"]}
    last_is_best = best.offer(run.step, quality(final["metrics"]), judged)
    if config.keep_best and not last_is_best:
        served = copy.deepcopy(last)  # the best evaluation was an earlier one: load it
        best.restore(served)
        summary = {
            "steps": run.step,
            **evaluate(served, config, data, seed, n_classes)["summary"],
            "last": final["summary"],
        }
    if config.keep_best:
        summary["best_step"] = best.step
    if run.ended_early is not None:
        reason = run.ended_early
        summary["stopped_early"] = {"step": reason.step, "code": reason.code}
        hooks.on_warning(
            run.step,
            "stopped_early",
            f"training stopped at step {run.step} of {config.total_steps} on {reason.code}, "
            f"as the config's stop_on asks; the model holds the generator of step "
            f"{best.step if config.keep_best else run.step}",
        )
    metadata = model_metadata(
        kind=variant.model.kind,
        algorithm=variant.name,
        config=config,
        seed=seed,
        shapes={
            "latent_dim": config.latent_dim,
            "data_dim": data.data_dim,
            **({"sample_shape": list(shape)} if len(shape) > 1 else {}),
            **({"n_classes": n_classes} if n_classes is not None else {}),
        },
        summary=summary,
    )
    return variant.model(
        metadata,
        served,
        discriminator.cpu().eval(),
        last_generator=None if served is last else last,
    )


# -- cost ----------------------------------------------------------------------------------------
def cost(
    config: AdversarialConfig,
    *,
    datasets: Mapping[str, Any] | None = None,
    d_extra_passes: int = 0,
) -> Cost:
    """Estimated operations of a run (`ml.core.cost`), with B = batch_size and G, D the
    generator's and discriminator's parameters (from the widths, batch norm included):

    - a discriminator update: G forward on B noise vectors, D forward and backward on B real
      and B generated points: B (2 G + 12 D), plus `d_extra_passes` more forward-and-backward
      passes of D on B points (WGAN-GP's penalty), plus an optimiser step's overhead;
    - a generator update: forward and backward through G and D: 6 B (G + D), plus overhead;
    - an evaluation: eval_samples forward passes of G, and mode coverage (the mixtures) or
      the MMD of up to 1,000 points against as many real ones (~n^2 (6 d + 60)), or on digits
      the classifier's forward passes and the metrics on its features;

    total = total_steps x (d_steps x D update + G update) + evaluations; per step (what
    sits between two stop checks: one `round` update, then the generator's, then an
    evaluation) = D update + G update + evaluation. The data dimension d is 2 for the
    built-in sets, 64 for digits, an uploaded dataset's `n_features` when `datasets` has its
    summary, else `UNKNOWN_DATA_DIM`. For conv networks G and D are their multiply-accumulates
    per sample, layer by layer (`ml.gan.networks.network_macs`), in place of parameters.
    """
    dataset = config.dataset
    shape: tuple[int, ...]
    if isinstance(dataset, RingDataset | GridDataset | SwissRollDataset):
        shape = (dataset.data_dim,)
    elif isinstance(dataset, DigitsDataset):
        shape = IMAGE_SHAPE
    else:
        summary = dataset_summary(datasets, dataset.id)
        default = [int(summary.get("n_features", UNKNOWN_DATA_DIM))]
        shape = tuple(int(d) for d in summary.get("sample_shape", default))
        shape = (1, *shape) if len(shape) == 2 else shape
    data_dim = math.prod(shape)
    try:
        g, d = network_macs(config, shape, config.conditional)
    except ConfigError:  # a shape conv networks cannot take: training will refuse it
        g, d = mlp_params([config.latent_dim, data_dim]), mlp_params([data_dim, 1])
    batch = config.batch_size
    d_update = batch * (FORWARD * g + (2 + d_extra_passes) * TRAIN * d) + UPDATE_OVERHEAD
    g_update = batch * TRAIN * (g + d) + UPDATE_OVERHEAD
    evaluation = config.eval_samples * FORWARD * g + CALL_OVERHEAD
    if isinstance(dataset, RingDataset | GridDataset):
        evaluation += config.eval_samples * dataset.n_modes * 8 * data_dim
    elif isinstance(dataset, DigitsDataset):
        # the classifier, density and coverage (distances to the held-out features), KID
        per_sample = FORWARD * DIGITS_CLASSIFIER_MACS + DIGITS_HELDOUT * 300
        evaluation += config.eval_samples * per_sample
        half = min(config.eval_samples, DIGITS_HELDOUT) // 2
        evaluation += DIGITS_KID_SUBSETS * 3 * half * half * 200
    else:
        n = min(config.eval_samples, MMD_POINTS)
        evaluation += n * n * (6 * data_dim + 60)
    # every eval_interval steps, at the end, and the best generator's again when it is not
    # the last
    evaluations = config.total_steps // config.eval_interval + 2
    return Cost(
        total=config.total_steps * (config.d_steps * d_update + g_update)
        + evaluations * evaluation,
        per_step=d_update + g_update + evaluation,
        total_fields=("total_steps", "batch_size", "generator_hidden", "discriminator_hidden"),
        step_fields=("batch_size", "generator_hidden", "discriminator_hidden", "eval_samples"),
    )


# -- model ---------------------------------------------------------------------------------------
Which = Literal["best", "last"]


class AdversarialModel(TrainedModel):
    """A trained GAN of any variant: the generator draws samples, the discriminator (or
    critic) scores points. A variant's model names its kind, config and kind of scores.

    It holds two generators when the best evaluation came before the end of training (a
    GAN's often does): `generator`, the best, which queries use by default, and
    `last_generator`, as training left it; `which="last"` asks for that one.
    """

    config_class: ClassVar[type[AdversarialConfig]] = AdversarialConfig
    scores: ClassVar[Literal["probability", "critic"]] = "probability"
    generator: nn.Module  # z [B, latent_dim] (, labels [B]) -> x [B, data_dim]
    discriminator: nn.Module | None  # x [B, data_dim] (, labels [B]) -> score [B, 1]

    def __init__(
        self,
        metadata: dict[str, Any],
        generator: nn.Module,
        discriminator: nn.Module | None,
        last_generator: nn.Module | None = None,
    ) -> None:
        super().__init__(metadata)
        self.generator = generator
        # None only for model files saved before models kept their discriminator.
        self.discriminator = discriminator
        # None when the last generator is the best one (or the run kept no best).
        self.last_generator = last_generator

    def generator_for(self, which: Which) -> nn.Module:
        """The best generator, or the last one (the same network when they are the same)."""
        if which == "last" and self.last_generator is not None:
            return self.last_generator
        return self.generator

    @property
    def latent_dim(self) -> int:
        return int(self.metadata["shapes"]["latent_dim"])

    @property
    def data_dim(self) -> int:
        return int(self.metadata["shapes"]["data_dim"])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample ([C, H, W] for images); a row of `generate` reshapes to it."""
        shapes = self.metadata["shapes"]
        return tuple(int(d) for d in shapes.get("sample_shape", [shapes["data_dim"]]))

    @property
    def n_classes(self) -> int | None:
        """The classes a conditional model takes labels of; None when not conditional."""
        n = self.metadata["shapes"].get("n_classes")
        return None if n is None else int(n)

    def checked_labels(
        self, labels: Sequence[int] | np.ndarray | None, n: int
    ) -> np.ndarray | None:
        """labels [n] int64 for the generator: the given ones, checked, or (None) for a
        conditional model every class in turn, 0, 1, ..., n_classes - 1, 0, ...; None for an
        unconditional model, which takes none (QueryError if given)."""
        k = self.n_classes
        if labels is None:
            return None if k is None else cycled_labels(n, k)
        if k is None:
            raise QueryError("this model is not conditional: it takes no labels", field="labels")
        y = np.asarray(labels)
        if y.ndim != 1 or len(y) != n:
            raise QueryError(f"labels must be {n} class labels, one per sample", field="labels")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= k:
            raise QueryError(f"labels must be integers in 0..{k - 1}", field="labels")
        return y.astype(np.int64)

    def state(self) -> dict[str, Any]:
        state = {"generator": self.generator.state_dict()}
        if self.last_generator is not None:
            state["last_generator"] = self.last_generator.state_dict()
        if self.discriminator is not None:
            state["discriminator"] = self.discriminator.state_dict()
        return state

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> AdversarialModel:
        config = cls.config_class.model_validate(metadata["config"])
        shapes = metadata["shapes"]
        shape = tuple(int(d) for d in shapes.get("sample_shape", [shapes["data_dim"]]))
        n_classes = shapes.get("n_classes")
        generator = make_generator(config, shape, n_classes)
        generator.load_state_dict(state["generator"])
        last = None
        if "last_generator" in state:
            last = make_generator(config, shape, n_classes)
            last.load_state_dict(state["last_generator"])
            last.eval()
        discriminator = None  # saved before models kept their discriminator
        if "discriminator" in state:
            discriminator = make_discriminator(config, shape, n_classes)
            discriminator.load_state_dict(state["discriminator"])
            discriminator.eval()
        return cls(metadata, generator.eval(), discriminator, last)

    def generate(
        self,
        n: int,
        seed: int | None = None,
        labels: Sequence[int] | np.ndarray | None = None,
        which: Which = "best",
    ) -> np.ndarray:
        """x [n, data_dim] float32 drawn from the learned distribution; the same `seed` gives
        the same points, `seed=None` fresh ones (entropy from the OS). A conditional model
        draws sample i of class labels[i]; without labels, of class i mod n_classes (every
        class in turn), so the latents are the same as with labels (`latents(n, seed)`).
        `which` chooses the best generator or the last."""
        y = self.checked_labels(labels, n)
        noise = torch.Generator()
        if seed is None:
            noise.seed()
        else:
            noise.manual_seed(seed)
        return generate(self.generator_for(which), n, self.latent_dim, noise, y)

    def latents(self, n: int, seed: int) -> np.ndarray:
        """z [n, latent_dim]: the latents `generate(n, seed)` decodes, so a client can
        interpolate between the samples of two seeds."""
        noise = torch.Generator().manual_seed(seed)
        return torch.randn(n, self.latent_dim, generator=noise).numpy().astype(np.float64)

    def generate_from(
        self,
        z: np.ndarray,
        labels: Sequence[int] | np.ndarray | None = None,
        which: Which = "best",
    ) -> np.ndarray:
        """x [n, data_dim] float32 = G(z) for given latents z [n, latent_dim] (labels and
        `which` as in `generate`)."""
        latents = torch.as_tensor(np.asarray(z, dtype=np.float32).reshape(-1, self.latent_dim))
        y = self.checked_labels(labels, len(latents))
        return decode(self.generator_for(which), latents, y)

    def explained(self) -> Explained:
        """The discriminator (critic) as explanations see it: samples in their own shape
        ([C, H, W] for images) -> its raw score, the logit of D(x) for a minimax GAN (the
        probability saturates where the discriminator is sure, and its gradient with it), a
        critic's score for a Wasserstein GAN; a conditional model's takes labels too."""
        if self.discriminator is None:
            raise QueryError(
                "this model file was saved without its discriminator; retrain it to explain it",
                field="query",
            )
        return Explained(
            forward=Reshaped(self.discriminator),
            root=self.discriminator,
            input_shape=self.sample_shape,
            input_field="samples",
            outputs=("logit D(x)" if self.scores == "probability" else "critic score",),
            output_label="discriminator" if self.scores == "probability" else "critic",
            classes=self.n_classes,
        )

    def discriminate(
        self, x: np.ndarray, labels: Sequence[int] | np.ndarray | None = None
    ) -> np.ndarray:
        """D(x) [n] for points x [n, data_dim]: the probability the discriminator gives to x
        being real data, or a critic's score (higher: more like the data); a conditional
        model's D(x | label), the labels as in `generate`."""
        if self.discriminator is None:
            raise QueryError(
                "this model file was saved without its discriminator; retrain it to score points",
                field="query",
            )
        points = torch.as_tensor(np.asarray(x, dtype=np.float32).reshape(-1, self.data_dim))
        y = self.checked_labels(labels, len(points))
        d = bind(self.discriminator, None if y is None else torch.from_numpy(y))
        with torch.no_grad():
            scores = shown_scores(d(points), self.scores)  # [n, 1]
        return scores.reshape(-1).numpy().astype(np.float64)
