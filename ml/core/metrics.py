"""Metric names, and buffering them so a loop syncs with its device once per log.

Every metric a training loop reports (`Hooks.on_metrics`) is called `namespace/name`, with
the namespace one of these (CleanRL's convention, extended by one namespace per family):

- `losses/`: objectives the update steps descend, averaged since the last log; a
  non-finite value ends the run as "diverged" (`ml.core.health`). `losses/td`,
  `losses/generator`, `losses/discriminator`.
- `eval/`: the current model judged on fresh episodes or samples, apart from training.
  `eval/return`, `eval/modes`, `eval/high_quality`, `eval/reverse_kl`, `eval/mmd`.
- `charts/`: the course of the run itself: schedules, training episodes.
  `charts/epsilon`, `charts/learning_rate_factor`, `charts/episodic_return`.
- `gan/` (generative adversarial networks): what the discriminator (or critic) says of
  real and generated batches, and what a variant's loss adds. `gan/d_real`, `gan/d_fake`,
  `gan/d_accuracy`, `gan/wasserstein`, `gan/gradient_penalty`, `gan/r1_penalty`
  (`ml.gan.adversarial`).
- `rl/` (deep reinforcement learning): what the value network predicts. `rl/q_mean`,
  `rl/q_max_abs`.
- `dp/` (dynamic programming): convergence of the sweeps and the solution. `dp/delta`,
  `dp/start_value`.
- `irl/` (inverse reinforcement learning): fit and quality of the learned reward.
  `irl/feature_gap`, `irl/reward_correlation`, `irl/expected_value_ratio`.

A metric's step is the loop's step when it is reported (`total_steps` or `max_iterations`
counts them). Nothing else is a metric name: `check_name` enforces this, and the algorithm
contract tests check every metric a tiny run reports.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

NAMESPACES: tuple[str, ...] = ("losses", "eval", "charts", "gan", "rl", "dp", "irl")


def check_name(name: str) -> str:
    """`name` if it is `namespace/name` with a documented namespace, else ValueError."""
    namespace, _, rest = name.partition("/")
    if namespace not in NAMESPACES or not rest:
        raise ValueError(
            f"metric {name!r} must be 'namespace/name' with a namespace from {NAMESPACES}"
        )
    return name


class MetricBuffer:
    """Values collected between two logs, averaged when the log is written.

    `add` keeps a per-step value (a loss) to be averaged; tensors stay on their device, and
    `flush` turns every buffered mean into Python floats with a single device-to-host copy,
    instead of one synchronisation per step and metric. `set` keeps only the latest value
    (a schedule's position).
    """

    def __init__(self) -> None:
        self._tensors: dict[str, list[torch.Tensor]] = {}
        self._floats: dict[str, list[float]] = {}
        self._latest: dict[str, float] = {}

    def add(self, name: str, value: torch.Tensor | float) -> None:
        if isinstance(value, torch.Tensor):
            if name not in self._tensors:
                check_name(name)
            self._tensors.setdefault(name, []).append(value.detach())
        else:
            if name not in self._floats:
                check_name(name)
            self._floats.setdefault(name, []).append(float(value))

    def add_all(self, values: Mapping[str, torch.Tensor | float]) -> None:
        for name, value in values.items():
            self.add(name, value)

    def set(self, name: str, value: float) -> None:
        if name not in self._latest:
            check_name(name)
        self._latest[name] = float(value)

    def __bool__(self) -> bool:
        return bool(self._tensors or self._floats or self._latest)

    def flush(self) -> dict[str, float]:
        """The means (and latest values) since the last flush; empties the buffer."""
        out: dict[str, float] = dict(self._latest)
        for name, values in self._floats.items():
            out[name] = float(np.mean(values))
        if self._tensors:
            names = list(self._tensors)
            means = torch.stack([torch.stack(self._tensors[n]).mean().double() for n in names])
            out.update(zip(names, means.tolist(), strict=True))  # the one sync
        self._tensors.clear()
        self._floats.clear()
        self._latest.clear()
        return out
