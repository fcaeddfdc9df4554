"""The hooks contract: how a training loop reports to whoever runs it.

The same `train()` runs in a notebook (`NullHooks`), a test (`RecordingHooks`) or a Celery
worker (which writes to the database). A loop calls, at step boundaries:

- `on_progress(step, total)` so a caller can show a fraction and an ETA;
- `on_metrics(step, {"losses/td": 0.1, ...})` with namespaced metric names;
- `on_checkpoint(state)` with everything needed to resume (`state["step"]` included), made
  only of tensors, numbers, strings, lists and dicts so it loads with `weights_only=True`;
- `on_warning(step, code, message)` when something is legal but suspicious (a diverging loss,
  a collapsed generator); the service records it on the job. A health check that must end the
  run raises `ml.core.errors.TrainingAborted(code, message)` instead;
- `should_stop()`; when it returns True the loop checkpoints and raises `TrainingStopped`.
  Loops ask it inside long steps and set-up too (rate-limited by `ml.core.training.Run`), so
  it must stay cheap: read a flag, never wait on I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Hooks(Protocol):
    def on_progress(self, step: int, total: int) -> None: ...

    def on_metrics(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def on_checkpoint(self, state: dict[str, Any]) -> None: ...

    def on_warning(self, step: int, code: str, message: str) -> None: ...

    def should_stop(self) -> bool: ...


class NullHooks:
    """Hooks that ignore everything: plain library use."""

    def on_progress(self, step: int, total: int) -> None:
        pass

    def on_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        pass

    def on_checkpoint(self, state: dict[str, Any]) -> None:
        pass

    def on_warning(self, step: int, code: str, message: str) -> None:
        pass

    def should_stop(self) -> bool:
        return False


class RecordingHooks:
    """Hooks that keep what they are told, and can ask the loop to stop after `stop_after`
    checkpoints; used by tests and handy in notebooks."""

    def __init__(self, stop_after_checkpoints: int | None = None) -> None:
        self.progress: list[tuple[int, int]] = []
        self.metrics: dict[str, list[tuple[int, float]]] = {}
        self.checkpoints: list[dict[str, Any]] = []
        self.warnings: list[tuple[int, str, str]] = []
        self._stop_after = stop_after_checkpoints

    def on_progress(self, step: int, total: int) -> None:
        self.progress.append((step, total))

    def on_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        for name, value in metrics.items():
            self.metrics.setdefault(name, []).append((step, float(value)))

    def on_checkpoint(self, state: dict[str, Any]) -> None:
        self.checkpoints.append(state)

    def on_warning(self, step: int, code: str, message: str) -> None:
        self.warnings.append((step, code, message))

    def should_stop(self) -> bool:
        return self._stop_after is not None and len(self.checkpoints) >= self._stop_after

    def last(self, name: str) -> float:
        return self.metrics[name][-1][1]
