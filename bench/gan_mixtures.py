"""GANs on the 2-D mixtures: every variant on PacGAN's ring8 and grid25, several seeds, judged
as the mode-collapse literature judges them, beside the published rows.

Each run trains one variant with its defaults (the data set aside) and draws 2,500 samples;
a mode is captured when it is the nearest mean of at least one high-quality sample (within 3
standard deviations), and the table shows modes captured, the share of high-quality samples,
the reverse KL of the generated mode distribution (Srivastava et al. 2017; Lin et al. 2018)
and the wall time of a run. Uniform noise over the data's square and samples of the true
mixture are reference rows: mode counts alone mean nothing (noise reaches most grid modes at
about 2% high quality), so modes and quality are read together.

Published (grid25, 2,500 samples; PacGAN Table 1, and GDPP for WGAN-GP): GAN 17.3 modes /
94.8%, PacGAN4 24.8 / 93.6%, VEEGAN 24.6 / 40%, WGAN-GP 24.2 / 28.7%.

`python -m bench bench.gan_mixtures`; BENCH_SEEDS (default 5) seeds per row and
BENCH_GAN_STEPS (default: each variant's own total_steps) from the environment.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import ml
from ml.core.hooks import NullHooks
from ml.gan.datasets import GridDataset, RingDataset
from ml.gan.metrics import mode_coverage

SAMPLES = 2_500
PUBLISHED_GRID = [
    ("GAN (PacGAN Table 1)", 17.3, 94.8),
    ("PacGAN4 (PacGAN Table 1)", 24.8, 93.6),
    ("VEEGAN (PacGAN Table 1)", 24.6, 40.0),
    ("WGAN-GP (as reported by GDPP)", 24.2, 28.7),
]


@dataclass(frozen=True)
class Variant:
    label: str
    algorithm: str
    overrides: dict[str, Any] = field(default_factory=dict)


VARIANTS = [
    Variant("gan", "gan"),
    Variant("gan, 12,000 steps", "gan", {"total_steps": 12_000}),
    Variant("wgan", "wgan"),
    Variant("wgan_gp", "wgan_gp"),
    Variant(
        "wgan_gp, the paper's settings",
        "wgan_gp",
        {"gp_weight": 10.0, "learning_rate_d": 1e-4, "learning_rate_schedule": "constant"},
    ),
]
DATA: dict[str, RingDataset | GridDataset] = {"ring8": RingDataset(), "grid25": GridDataset()}


@dataclass
class Row:
    modes: list[int] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)
    reverse_kl: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def add(self, scores: dict[str, Any], seconds: float) -> None:
        self.modes.append(int(scores["modes"]))
        self.quality.append(100.0 * float(scores["high_quality"]))
        self.reverse_kl.append(float(scores["reverse_kl"]))
        self.seconds.append(seconds)

    def line(self, label: str, n_modes: int) -> str:
        def spread(values: list[float]) -> str:
            mean = statistics.fmean(values)
            sd = statistics.pstdev(values) if len(values) > 1 else 0.0
            return f"{mean:6.1f} ±{sd:4.1f}"

        timing = f"{statistics.fmean(self.seconds):6.1f} s" if self.seconds else "      -"
        return (
            f"  {label:<30} modes {spread([float(m) for m in self.modes])} /{n_modes:<3}"
            f" (min {min(self.modes):2d})  high-quality {spread(self.quality)} %"
            f"  reverse KL {spread(self.reverse_kl)}  {timing}"
        )


def train_and_score(variant: Variant, data: RingDataset | GridDataset, seed: int) -> Row:
    algorithm = ml.ALGORITHMS[variant.algorithm]
    overrides: dict[str, Any] = {"dataset": data.model_dump(), **variant.overrides}
    steps = os.environ.get("BENCH_GAN_STEPS")
    if steps:
        overrides["total_steps"] = int(steps)
    config = algorithm.config.model_validate(overrides)
    start = time.perf_counter()
    model: Any = algorithm.run(config, seed=seed, hooks=NullHooks())
    seconds = time.perf_counter() - start
    row = Row()
    samples = model.generate(SAMPLES, seed=10_000 + seed)
    row.add(mode_coverage(samples, data.means(), data.std), seconds)
    return row


def references(data: RingDataset | GridDataset, seeds: int) -> dict[str, Row]:
    half = float(np.abs(data.means()).max()) + 1.0  # the square the modes sit in, with a margin
    rows = {"uniform noise": Row(), "samples of the data": Row()}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        noise = rng.uniform(-half, half, size=(SAMPLES, 2))
        rows["uniform noise"].add(mode_coverage(noise, data.means(), data.std), 0.0)
        real = data.sample(SAMPLES, rng)
        rows["samples of the data"].add(mode_coverage(real, data.means(), data.std), 0.0)
    for row in rows.values():
        row.seconds.clear()
    return rows


def main() -> None:
    seeds = int(os.environ.get("BENCH_SEEDS", "5"))
    for name, data in DATA.items():
        n_modes = len(data.means())
        print(f"{name}: {seeds} seeds, {SAMPLES} samples each, mean ± sd over seeds", flush=True)
        for variant in VARIANTS:
            row = Row()
            for seed in range(seeds):
                one = train_and_score(variant, data, seed)
                row.add(
                    {
                        "modes": one.modes[0],
                        "high_quality": one.quality[0] / 100.0,
                        "reverse_kl": one.reverse_kl[0],
                    },
                    one.seconds[0],
                )
            print(row.line(variant.label, n_modes), flush=True)
        for label, reference in references(data, seeds).items():
            print(reference.line(label, n_modes), flush=True)
        if name == "grid25":
            for label, modes, quality in PUBLISHED_GRID:
                print(f"  {label:<30} modes {modes:6.1f}        /25  high-quality {quality:6.1f} %")
