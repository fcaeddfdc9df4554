"""Health checks of a GAN run: the ways adversarial training goes wrong while its losses look
fine, caught from the metrics the loop reports anyway (`ml.core.health`).

- `discriminator_wins`: D tells real from generated apart perfectly for hundreds of steps, so
  the generator's gradients vanish (minimax) or carry no direction (Arjovsky & Bottou 2017,
  "Towards Principled Methods for Training GANs"), seen as `gan/d_accuracy` ~ 1 for as long
  (a discriminator's loss may still be well above 0 then; a critic's has no floor at all).
- `mode_collapse`: the generated samples, once spread, are far less spread than the data
  (`eval/diversity`, their mean pairwise distance over the data's, falls below one half and
  below half its best): the generator maps most of its latent space onto a few points
  (Goodfellow 2016, NIPS tutorial section 5.1.1). A generator that never spread (early in
  training, its outputs still near one point) has not collapsed; it is simply untrained.
- `coverage_falling`: the coverage of the data (modes captured on the 2-D mixtures; Naeem et
  al.'s coverage on digits) falls well below the best the run reached: the generator is
  leaving modes it had, the mode hopping of Metz et al. 2017.

Non-finite losses end the run as `diverged` (`ml.core.health.HealthCheck`). Each warning
goes into the job's warnings; a config's `stop_on` may name any of these codes to end the run
early instead, keeping the best generator so far.
"""

from __future__ import annotations

from typing import Literal

from ml.core.health import Suspicion

DISCRIMINATOR_WINS = "discriminator_wins"
MODE_COLLAPSE = "mode_collapse"
COVERAGE_FALLING = "coverage_falling"
HealthCode = Literal["discriminator_wins", "mode_collapse", "coverage_falling"]

WINS_ADVICE = (
    "try a smaller learning_rate_d, fewer d_steps, a larger learning_rate_g, or (gan) "
    "loss='non_saturating'"
)
# How far below the data's spread the samples' may fall before they count as collapsed.
MIN_DIVERSITY = 0.5
# How far below its best the coverage may fall before it counts as falling.
COVERAGE_KEPT = 0.6


def discriminator_wins(scores: Literal["probability", "critic"]) -> Suspicion:
    """D tells every real and every generated point of its batches apart at three logs in a
    row (300 generator steps at the default log interval). Healthy runs stay well below:
    about 0.7 on the 2-D mixtures, 0.6-0.8 for DCGAN on digits."""
    what = "discriminator" if scores == "probability" else "critic"
    return Suspicion(
        code=DISCRIMINATOR_WINS,
        message=f"the {what} has told every real from every generated sample apart for "
        "several hundred steps (D(real) -> 1, D(fake) -> 0): the generator's gradients "
        f"vanish or carry no direction, and it is not catching up; {WINS_ADVICE}",
        metric="gan/d_accuracy",
        test=lambda accuracy: accuracy > 0.995,
        patience=3,
    )


def mode_collapse() -> Suspicion:
    """The samples' spread below half the data's, and below half the best it reached, at two
    evaluations in a row. Stateful: make one per run."""
    return Suspicion(
        code=MODE_COLLAPSE,
        message="the generated samples are now spread less than half as much as the data "
        "(eval/diversity), after having been spread more: the generator has collapsed onto "
        "a few modes; try a smaller learning rate, a larger batch, or wgan_gp",
        metric="eval/diversity",
        test=FallsBelowBest(0.5, below=MIN_DIVERSITY),
        patience=2,
    )


class FallsBelowBest:
    """True when a value is below `kept` times the largest seen so far (of this run), and
    below `below` when given."""

    def __init__(self, kept: float, below: float | None = None) -> None:
        self.kept = kept
        self.below = below
        self.best = float("-inf")

    def __call__(self, value: float) -> bool:
        self.best = max(self.best, value)
        low = self.below is None or value < self.below
        return low and value < self.kept * self.best


def coverage_falling(metric: str) -> Suspicion:
    """`metric` below 60% of its best at two evaluations in a row. Stateful: make one per
    run."""
    return Suspicion(
        code=COVERAGE_FALLING,
        message=f"the coverage of the data ({metric}) has fallen well below the best this run "
        "reached: the generator is dropping modes it had; the model keeps the best generator, "
        "and a smaller or decaying learning rate may hold it",
        metric=metric,
        test=FallsBelowBest(COVERAGE_KEPT),
        patience=2,
    )
