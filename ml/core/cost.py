"""What a config costs to run, estimated before it runs, and the bound that refuses it.

A job's config decides how much compute it buys (steps, batch, widths, grid size...), so an
unchecked config lets one request buy unbounded compute. Each algorithm estimates its own
cost (`Algorithm.cost`, documented in its module), and `check_cost` refuses a config past
two bounds with a `ConfigTooExpensive` (code `config_too_expensive`) naming the fields to
lower:

- `Cost.total`, the whole run: roughly the floating-point operations of the budget the
  config allows (`total_steps` or `max_iterations`; a run that converges or reaches its
  target early costs less);
- `Cost.per_step`, the most work that sits between two of the run's stop checks
  (`Run.stop_if_asked`, `Run.interrupt_if_asked`, `Run.round`): a cancel or a stop waits
  for at most that much, so bounding it keeps a cancel within about a second.

Counting conventions, shared by every estimate:

- a dense layer's forward pass costs 2 operations per weight and example, forward and
  backward together about 6 (`FORWARD`, `TRAIN`; Kaplan et al. 2020, "Scaling Laws for
  Neural Language Models", Section 2.1); a dense DP backup sum_s' P[s, a, s'] V[s'] costs 2
  per entry of P;
- work that is not arithmetic (a PyTorch optimiser step's kernel launches and Python, a
  Gymnasium step, a handful of NumPy calls) is counted as the operations the same time
  would do at `OPS_PER_SECOND`, the rate measured on one CPU core running these networks
  (2-4e10 operations per second for the default GAN and DQN updates, up to 1e11 for wide
  layers and large batches). So the bounds read as time, at most: `DEFAULT_MAX_JOB_COST`
  is about 14 hours of one core (much less on a GPU), and `DEFAULT_MAX_STEP_COST` about a
  second (measured: a GAN step estimated at 5e10 took 1 s, a DQN update at 3.5e10 0.35 s).

The estimates are meant to be right within a small factor (tests/ml/test_cost.py compares
one with networks actually built), not exact. Writing checkpoints is I/O bounded by the
sizes the config allows and is not counted.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel

from ml.core.errors import ConfigTooExpensive

if TYPE_CHECKING:
    from ml.core.algorithm import Algorithm

ConfigT_contra = TypeVar("ConfigT_contra", bound=BaseModel, contravariant=True)

# The service's default bounds (`MAX_JOB_COST`, `MAX_STEP_COST` in store/settings.py, which
# must agree: tests/store/test_settings.py): every algorithm's default config costs at most a
# tenth of each (tests/ml/test_cost.py), in practice hundreds of times less.
DEFAULT_MAX_JOB_COST = 1e15
DEFAULT_MAX_STEP_COST = 2e10

FORWARD = 2  # operations per weight and example of a forward pass
TRAIN = 6  # of a forward and a backward pass
OPS_PER_SECOND = 2e10  # one CPU core on these networks: what a second of overhead counts as
UPDATE_OVERHEAD = 1e-3 * OPS_PER_SECOND  # one optimiser step of PyTorch (measured 0.8 ms)
CALL_OVERHEAD = 5e-5 * OPS_PER_SECOND  # a small forward pass, a Gymnasium step, a DP sweep


@dataclass(frozen=True)
class Cost:
    """A config's estimated compute, in floating-point operations (roughly; see the module
    docstring), and the fields that lower each part."""

    total: float  # the whole run, at its full budget
    per_step: float  # the most work between two stop checks
    total_fields: tuple[str, ...] = ()  # config fields that lower `total`, most useful first
    step_fields: tuple[str, ...] = ()  # config fields that lower `per_step`


class CostFn(Protocol[ConfigT_contra]):
    """`cost(config, *, datasets=None) -> Cost`; `datasets` maps the id of an uploaded dataset
    to the `ml.data.Dataset` (what `ml.train` takes) or to its summary (what the service
    stores), for estimates that depend on the data's shape; without it an estimate assumes
    a documented shape."""

    def __call__(
        self, config: ConfigT_contra, *, datasets: Mapping[str, Any] | None = None
    ) -> Cost: ...


def mlp_params(sizes: Sequence[int]) -> int:
    """Weights and biases of a fully connected stack of layer sizes [in, hidden..., out]
    (`ml.core.nets.mlp(in, hidden, out)`), computed without building it."""
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


def dataset_summary(datasets: Mapping[str, Any] | None, dataset_id: str) -> Mapping[str, Any]:
    """The summary of an uploaded dataset in `datasets` (see `CostFn`); empty if absent."""
    found = (datasets or {}).get(dataset_id)
    summary = getattr(found, "summary", found)
    return summary if isinstance(summary, Mapping) else {}


def vi_sweeps(discount: float, *, tolerance: float, reward_scale: float, cap: int) -> int:
    """Sweeps value iteration needs at most to reach `tolerance` from V = 0 when rewards are
    within `reward_scale`: the backup is a `discount`-contraction, so the change made by
    sweep k + 1 is at most discount^k reward_scale (Sutton & Barto 2018, Section 4.4);
    `cap` when discount is 1."""
    if discount <= 0.0:
        return 2  # the second sweep changes nothing
    if discount >= 1.0:
        return cap
    sweeps = math.log(reward_scale / tolerance) / -math.log(discount)
    return min(cap, math.ceil(sweeps) + 1)


def _fields(fields: tuple[str, ...]) -> str:
    return ", ".join(fields) if fields else "the config's sizes"


def check_cost(
    algorithm: Algorithm[Any],
    config: BaseModel,
    *,
    max_cost: float,
    max_step_cost: float,
    datasets: Mapping[str, Any] | None = None,
) -> Cost:
    """`algorithm`'s estimate of a validated `config`, or `ConfigTooExpensive` (a
    `ConfigError` with code `config_too_expensive`) when it is past `max_cost` in total or
    `max_step_cost` per step; the message names the estimate, the bound and the fields to
    lower, and `field` the first of them (a step's first: lowering it lowers both)."""
    if not isinstance(config, algorithm.config):
        config = algorithm.config.model_validate(config.model_dump())
    cost = algorithm.cost(config, datasets=datasets)
    problems: list[tuple[str, str | None]] = []
    if cost.per_step > max_step_cost:
        problems.append(
            (
                f"one step is estimated at {cost.per_step:.2g} operations, over the bound of "
                f"{max_step_cost:.2g} per step (a cancel would wait for it); lower "
                f"{_fields(cost.step_fields)}",
                cost.step_fields[0] if cost.step_fields else None,
            )
        )
    if cost.total > max_cost:
        problems.append(
            (
                f"this config's estimated cost is {cost.total:.2g} operations, over the bound "
                f"of {max_cost:.2g} for a job; lower {_fields(cost.total_fields)}",
                cost.total_fields[0] if cost.total_fields else None,
            )
        )
    if problems:
        message = "; and ".join(text for text, _ in problems)
        raise ConfigTooExpensive(f"{algorithm.name}: {message}", field=problems[0][1])
    return cost
