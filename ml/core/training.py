"""The training skeleton: the plumbing every `train()` needs besides its algorithm, once.

An algorithm file reads top to bottom: config, networks, update step, loop. The loop hands
the rest to a `Run`:

    run = Run(hooks, config, log_interval=LOG_INTERVAL, suspicions=[...])
    run.track(q_network=q_network, optimizer=optimizer, rng=rng)  # what a checkpoint holds
    run.start(resume)               # restore them and `run.step`; report progress
    while run.step < config.total_steps:
        run.stop_if_asked()         # checkpoint (unless this step has one) and stop
        for _ in run.round(config.updates_per_step):  # a stop may come between two updates
            loss = update(...)      # the algorithm
            run.metrics.add("losses/td", loss)  # stays on the device until the next log
        run.advance()               # step += 1
        if run.due(config.eval_interval):  # a long evaluation lets a stop in as it goes
            run.report({"eval/return": evaluate(..., interrupt=run.interrupt_if_asked)})
        run.end_step()              # log and checkpoint when due
    run.finish()                    # what is still buffered, and the final progress

What it guarantees, so that no algorithm has to remember it:

- A stop checkpoints once: `stop_if_asked` writes a checkpoint and raises `TrainingStopped`,
  unless the current step already has one (a scheduled checkpoint just written, or the one a
  run resumed from), which is then the one to resume from.
- A stop lands within a fraction of a second however long a step is, not only at the next
  step boundary: inside a step (a long round of gradient steps, an evaluation, a set-up that
  solves an MDP) the loop calls `interrupt_if_asked`, which asks the hooks at most every
  `stop_check_seconds` and stops like `stop_if_asked`, ending the step where it is (its
  docstring says what a resumed run then does). `round(n)` is a `range(n)` of updates with
  that check before each; before `advance`, a run resumed from a stop inside it does only
  the updates that were left, so that resuming stays exact.
- A checkpoint is `{"step": int, "values": {...}, <tracked name>: <its state>, ...}` made
  only of tensors and plain containers, every tensor a copy on the CPU: it loads with
  `torch.load(weights_only=True)`, does not move on with the live weights, and does not hold
  GPU memory. Random generators are tracked like networks, so a resumed run draws the same
  numbers the uninterrupted one would have.
- Metrics are namespaced (`ml.core.metrics`), buffered between logs with one device
  synchronisation per log, and health-checked (`ml.core.health`) before they are reported.

A helper object rather than a base class to inherit from: `train` stays a plain function
whose loop is written out in its own file, and the families, which share little else, share
no hierarchy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from pydantic import BaseModel
from torch import nn

from ml.core.errors import ArtifactError, TrainingStopped
from ml.core.health import HealthCheck, StopReason, Suspicion
from ml.core.hooks import Hooks
from ml.core.metrics import MetricBuffer, check_name


class Stateful(Protocol):
    """Anything with PyTorch's `state_dict` / `load_state_dict` pair (networks, optimizers,
    `ml.rl.replay.ReplayBuffer`, `KeepBest`)."""

    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> Any: ...


# What `Run.track` accepts; a NumPy array is restored in place, so update it in place too.
Tracked = Stateful | np.random.Generator | torch.Generator | np.ndarray

# What a long computation outside the skeleton (an evaluation, a dynamic-programming solve)
# takes to let a stop in: called between two pieces of work, it may raise `TrainingStopped`.
# A run's is `Run.interrupt_if_asked`; plain library use passes `never`.
Interrupt = Callable[[], None]


def never() -> None:
    """The `Interrupt` of a computation nobody stops."""


# `Run.values` key of a `round` cut short by a stop: its step and the updates it had done.
ROUND = "round"


def cpu_copy(value: Any) -> Any:
    """A deep copy with every tensor on the CPU (NumPy arrays become tensors), so a
    checkpoint never aliases live weights and loads with `weights_only=True`."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        return {k: cpu_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(cpu_copy(v) for v in value)
    return value


def state_of(obj: Tracked) -> Any:
    """The checkpointable state of a tracked object, copied to the CPU."""
    if isinstance(obj, np.random.Generator):
        return cpu_copy(obj.bit_generator.state)  # a dict of str and int
    if isinstance(obj, torch.Generator):
        return obj.get_state().clone()  # a CPU byte tensor, whatever the device
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    return cpu_copy(obj.state_dict())


def load_state(obj: Tracked, state: Any) -> None:
    """Put `state` (from `state_of`) back into `obj`, in place."""
    if isinstance(obj, np.random.Generator):
        obj.bit_generator.state = state
    elif isinstance(obj, torch.Generator):
        obj.set_state(state.cpu())
    elif isinstance(obj, np.ndarray):
        values = state.cpu().numpy()
        if values.shape != obj.shape:
            raise ValueError(f"checkpointed array has shape {values.shape}, not {obj.shape}")
        obj[...] = values
    else:
        obj.load_state_dict(state)


def budget(config: BaseModel) -> int:
    """A run's length: its config's one budget field, `total_steps` (environment or
    generator steps) or `max_iterations` (iterative solvers)."""
    fields = [f for f in ("total_steps", "max_iterations") if f in type(config).model_fields]
    if len(fields) != 1:
        raise TypeError(f"{type(config).__name__} needs one of total_steps or max_iterations")
    return int(getattr(config, fields[0]))


class Run:
    """One training run's step counter, checkpoints, stop, metrics and progress; its
    length and checkpoint interval come from the config (`budget`, `checkpoint_interval`)."""

    # The most time between two questions `interrupt_if_asked` puts to the hooks: a small part
    # of the second a stop may take, and rare enough to cost nothing in a tight inner loop
    # whatever `should_stop` does. A test may set it to 0 to count the checks.
    stop_check_seconds: ClassVar[float] = 0.05

    def __init__(
        self,
        hooks: Hooks,
        config: BaseModel,
        *,
        log_interval: int,
        suspicions: Sequence[Suspicion] = (),
        stop_on: Collection[str] = (),
    ) -> None:
        self.hooks = hooks
        self.total = budget(config)
        self.log_interval = log_interval
        self.checkpoint_interval = int(getattr(config, "checkpoint_interval"))  # noqa: B009
        self.step = 0
        self.metrics = MetricBuffer()
        self.health = HealthCheck(hooks, suspicions, stop_on)
        # Plain values a checkpoint keeps besides the tracked objects (episode counts...).
        self.values: dict[str, Any] = {}
        self._tracked: dict[str, Tracked] = {}
        self._checkpointed_step: int | None = None
        self._reported_step: int | None = None
        self._started = False
        self._next_stop_check = 0.0  # time.monotonic() of the next question to the hooks

    # -- checkpoints -----------------------------------------------------------------------
    def track(self, **objects: Tracked) -> None:
        """Name what a checkpoint holds: networks, optimizers, buffers, generators, arrays."""
        for name in objects:
            if name in ("step", "values") or name in self._tracked:
                raise ValueError(f"{name!r} is already part of the checkpoint")
        self._tracked.update(objects)

    def start(self, resume: Mapping[str, Any] | None = None) -> None:
        """Restore the tracked objects, `values` and `step` from a checkpoint (if any), and
        report the starting progress."""
        if resume is not None:
            # A copy: optimizers adopt the tensors they load and update them in place, which
            # would change the caller's checkpoint under it.
            resume = cpu_copy(dict(resume))
            missing = [n for n in ("step", *self._tracked) if n not in resume]
            if missing:
                raise ArtifactError(f"the checkpoint does not fit this run: no {missing}")
            self.step = int(resume["step"])
            for name, obj in self._tracked.items():
                load_state(obj, resume[name])
            self.values.update(resume.get("values", {}))
            self._checkpointed_step = self.step  # resuming from it: no need to write it again
        self._started = True
        self.progress()

    def snapshot(self) -> dict[str, Any]:
        """The checkpoint of the current step; see the module docstring."""
        state = {name: state_of(obj) for name, obj in self._tracked.items()}
        return {"step": self.step, "values": cpu_copy(self.values), **state}

    def checkpoint(self) -> None:
        self.hooks.on_checkpoint(self.snapshot())
        self._checkpointed_step = self.step

    def stop_if_asked(self) -> None:
        """When the caller asks to stop: checkpoint this step, once, and raise."""
        if self.hooks.should_stop():
            if self._checkpointed_step != self.step:
                self.checkpoint()
            raise TrainingStopped(self.step)

    def interrupt_if_asked(self) -> None:
        """Inside a step, after `start`: when the caller asks to stop, end the step here,
        checkpoint it (once) and raise `TrainingStopped`, as `stop_if_asked` does.

        Call it between two updates, where the tracked objects agree with each other. The
        checkpoint holds them as they are, labelled with the current step, so a resumed run
        goes on with the next step: the updates this step made are kept, what it had left
        (the rest of a round of gradient steps, an evaluation, a log) is skipped. When the
        step already has its checkpoint (the one the run resumed from, or a scheduled one),
        that is the one to resume from, and the step's work since is done again. The hooks
        are asked at most every `stop_check_seconds`.
        """
        assert self._started, "interrupt_if_asked before start: nothing to checkpoint yet"
        now = time.monotonic()
        if now < self._next_stop_check:
            return
        self._next_stop_check = now + self.stop_check_seconds
        self.stop_if_asked()

    def round(self, n: int) -> Iterator[int]:
        """`range(n)` for a round of updates at the start of a step (before `advance`), such
        as a GAN's discriminator steps, with `interrupt_if_asked` before each.

        A stop between two updates records in the checkpoint how many were done; a run
        resumed from it does only the rest, so it ends exactly as an uninterrupted run would.
        """
        partial = self.values.pop(ROUND, None)
        done = int(partial["done"]) if partial and int(partial["step"]) == self.step else 0
        for i in range(done, n):
            self.values[ROUND] = {"step": self.step, "done": i}
            self.interrupt_if_asked()
            yield i
        self.values.pop(ROUND, None)

    # -- the step ----------------------------------------------------------------------------
    @property
    def ended_early(self) -> StopReason | None:
        """Why the run should end before its budget: a health warning the config asked to
        stop on (`stop_on`); None while it should go on. The loop tests it with its budget:
        `while run.step < config.total_steps and not run.ended_early`."""
        return self.health.stop_reason

    def advance(self) -> int:
        """Count one step done; returns the new step."""
        self.step += 1
        return self.step

    def due(self, interval: int) -> bool:
        """Whether something done every `interval` steps (and at the end) is due now."""
        return self.step % interval == 0 or self.step == self.total

    def end_step(self) -> None:
        """Log when due; checkpoint when due (at the end `finish` does)."""
        if self.due(self.log_interval):
            self.log()
        if self.step % self.checkpoint_interval == 0 and self.step < self.total:
            self.checkpoint()

    # -- reporting -------------------------------------------------------------------------
    def report(self, metrics: Mapping[str, float]) -> None:
        """Health-check `metrics` and hand them to the hooks at the current step."""
        for name in metrics:
            check_name(name)
        self.health.check(self.step, metrics)
        self.hooks.on_metrics(self.step, dict(metrics))

    def progress(self) -> None:
        self.hooks.on_progress(self.step, self.total)
        self._reported_step = self.step

    def log(self, metrics: Mapping[str, float] | None = None) -> None:
        """Report the buffered metrics (one device sync) with `metrics`, and the progress
        (once per step)."""
        flushed = {**self.metrics.flush(), **(metrics or {})}
        if flushed:
            self.report(flushed)
        if self._reported_step != self.step:
            self.progress()

    def finish(self, metrics: Mapping[str, float] | None = None) -> None:
        """After the loop: report what is still buffered and `metrics`, and the progress;
        then checkpoint the final state, from which a later job may continue the run with a
        larger budget (the service keeps it `CHECKPOINT_RETENTION_HOURS`)."""
        if self.metrics or metrics or self._reported_step != self.step:
            self.log(metrics)
        self.checkpoint()


class KeepBest:
    """The weights of a network at its best evaluation, and the latest evaluation.

    Returning the best-evaluated network, as Stable-Baselines3's EvalCallback keeps its best
    model, guards against the swings of a learner's greedy return between evaluations.
    """

    def __init__(self, metric: str = "eval_return") -> None:
        self.metric = metric  # what the score is, as the summary names it
        self.score: float | None = None  # best evaluation so far
        self.step: int | None = None  # its step
        self.weights: dict[str, Any] | None = None  # its state_dict, on the CPU
        self.last_score: float | None = None
        self.last_step: int | None = None

    def offer(self, step: int, score: float, network: nn.Module) -> bool:
        """Record an evaluation; keep a CPU copy of `network` if it is the best so far."""
        self.last_score, self.last_step = score, step
        if self.score is not None and score <= self.score:
            return False
        self.score, self.step = score, step
        self.weights = cpu_copy(network.state_dict())
        return True

    def summary(self) -> dict[str, Any]:
        return {
            f"best_{self.metric}": self.score,
            "best_eval_step": self.step,
            f"final_{self.metric}": self.last_score,
        }

    def restore(self, network: nn.Module) -> None:
        """Load the best weights into `network` (a run always evaluates before it ends)."""
        assert self.weights is not None, "no evaluation was offered"
        network.load_state_dict(self.weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "step": self.step,
            "weights": self.weights,
            "last_score": self.last_score,
            "last_step": self.last_step,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.score, self.step = state["score"], state["step"]
        self.weights = state["weights"]
        self.last_score, self.last_step = state["last_score"], state["last_step"]
