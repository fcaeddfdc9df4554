"""Health checks on the metrics a run reports: end the hopeless run, flag the suspicious one.

A neural run can fail in ways its hyper-parameters allowed: a loss that becomes NaN or
infinite never comes back (every later update is NaN too), so it ends the run at once with
`TrainingAborted("diverged")` and the service marks the job failed with that code instead of
training garbage for hours. Other signs are legal but suspicious, such as a GAN discriminator
whose loss stays near zero (it wins outright and the generator's gradients vanish; Arjovsky &
Bottou 2017, "Towards Principled Methods for Training GANs") or Q-values far beyond any return
the rewards allow (Q-learning with function approximation diverging; van Hasselt et al. 2018,
"Deep RL and the Deadly Triad"): those become a warning (`Hooks.on_warning`) once they have
lasted `patience` consecutive reports, and the run goes on, unless the config named that
warning's code among those to stop on (`stop_on`): then the check records why
(`stop_reason`), and the loop ends the run early with the model it has (`Run.ended_early`).

The checks read the metrics the loop reports anyway (`ml.core.metrics`), so they cost no
extra device synchronisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from ml.core.errors import TrainingAborted
from ml.core.hooks import Hooks


@dataclass(frozen=True)
class Suspicion:
    """A legal but suspicious state, recognised from one metric's value; reports without
    that metric neither count nor clear it."""

    code: str  # the warning's code, e.g. "discriminator_overpowers"
    message: str  # what it means and what to try
    metric: str  # the metric it watches, e.g. "losses/discriminator"
    test: Callable[[float], bool]  # true when the value looks suspicious
    patience: int = 3  # consecutive suspicious reports of the metric before warning


@dataclass(frozen=True)
class StopReason:
    """Why a run ended early: the warning it was asked to stop on."""

    step: int
    code: str
    message: str


class HealthCheck:
    """Abort on non-finite losses; warn once a `Suspicion` has lasted its `patience`, and
    record a `StopReason` when its code is one of `stop_on`.

    A suspicion warns again only after it has cleared (a report that does not match). The
    streaks live in memory: a run resumed from a checkpoint starts counting afresh.
    """

    def __init__(
        self, hooks: Hooks, suspicions: Sequence[Suspicion] = (), stop_on: Collection[str] = ()
    ) -> None:
        self.hooks = hooks
        self.suspicions = tuple(suspicions)
        self.stop_on = frozenset(stop_on)
        self.stop_reason: StopReason | None = None  # the first warning named in stop_on
        self._streak = {s.code: 0 for s in self.suspicions}

    def check(self, step: int, metrics: Mapping[str, float]) -> None:
        for name, value in metrics.items():
            if name.startswith("losses/") and not math.isfinite(value):
                raise TrainingAborted(
                    "diverged",
                    f"{name} became {value} at step {step}: the run diverged (try a smaller "
                    "learning rate or gradient clipping)",
                    step=step,
                )
        for suspicion in self.suspicions:
            if suspicion.metric not in metrics:
                continue
            if not suspicion.test(metrics[suspicion.metric]):
                self._streak[suspicion.code] = 0
                continue
            self._streak[suspicion.code] += 1
            if self._streak[suspicion.code] == suspicion.patience:
                self.hooks.on_warning(step, suspicion.code, suspicion.message)
                if suspicion.code in self.stop_on and self.stop_reason is None:
                    self.stop_reason = StopReason(step, suspicion.code, suspicion.message)
