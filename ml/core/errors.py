"""Errors the `ml` package raises for problems a caller can fix.

They carry the name of the offending field so the service can turn them into a 422 that
points at the right place, without `ml` knowing anything about HTTP.
"""

from __future__ import annotations


class MLError(ValueError):
    """Base class: a problem with what the caller asked for, not a bug in `ml`."""

    code = "invalid_input"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class QueryError(MLError):
    """A query's input does not fit the model (wrong shape, outside the grid, not finite)."""

    code = "invalid_query"


class UnsupportedQuery(MLError):
    """The model's kind does not answer this query (e.g. samples from a Q-network)."""

    code = "unsupported_query"


class ConfigError(MLError):
    """A config is well-typed but inconsistent (e.g. a grid with no start cell)."""

    code = "invalid_config"


class ConfigTooExpensive(ConfigError):
    """A valid config whose estimated compute is past the bound (`ml.core.cost.check_cost`)."""

    code = "config_too_expensive"


class ArtifactError(MLError):
    """A model or checkpoint file is missing, corrupt, or of an unknown kind."""

    code = "invalid_artifact"


class TrainingStopped(Exception):
    """Raised by a training loop when `hooks.should_stop()` said so.

    The loop has already handed its last checkpoint to `hooks.on_checkpoint`, so the run can
    be resumed or discarded by whoever asked it to stop.
    """

    def __init__(self, step: int) -> None:
        super().__init__(f"training stopped at step {step}")
        self.step = step


class TrainingAborted(Exception):
    """Raised by a training loop whose health check found the run cannot succeed (diverged,
    collapsed): the job ends `failed` with `code` as its error code, not as a crash."""

    def __init__(self, code: str, message: str, *, step: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.step = step


class DatasetError(MLError):
    """An uploaded dataset is malformed: `field` names the array (or column), and the message
    names the row, so a user can find the problem in their file."""

    code = "invalid_dataset"
