"""One log format for every Crucible process, so `make run`'s interleaved output (the API and
two workers on one terminal) reads as one log: time, level, logger, message.

    2026-12-07 06:30:00 INFO     api.main: API keys required (AUTH_REQUIRED=true)
    2026-12-07 06:30:02 INFO     celery.apps.worker: crucible-train@host ready.

`LOG_LEVEL` (the `log_level` setting) sets the level everywhere: the API passes it here when
the app is built, and `scripts/run.sh` and the Makefile hand the same value to uvicorn
(`--log-level`) and Celery (`--loglevel`, which reaches `configure` through Celery's
`setup_logging` signal, see `worker.app`). In the API, uvicorn's own lines are handed to the
same handler, its access log only when `ACCESS_LOG` is on.

It lives in `store/` because both the API and the worker import `store`.
"""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def level_of(level: str | int) -> int:
    """A level by name in any case (`info`, as uvicorn spells it, or `INFO`) or by number;
    an unknown name is a `ValueError` that lists the known ones."""
    if isinstance(level, int):
        return level
    name = level.strip().upper()
    if name not in LEVELS:
        raise ValueError(f"LOG_LEVEL must be one of {', '.join(LEVELS)}, not {level!r}")
    return logging.getLevelName(name)  # type: ignore[no-any-return]


def configure(level: str | int, *, access_log: bool | None = None) -> None:
    """Log to stderr in `FORMAT` at `level`. Like `logging.basicConfig`, nothing changes when
    the root logger has handlers already (a test runner's capture, a program that embeds the
    app and set up its own). `access_log` (the API only) says whether uvicorn's access lines
    are kept; uvicorn's other lines always come through the same handler."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    root.addHandler(handler)
    root.setLevel(level_of(level))
    if access_log is not None:
        adopt_uvicorn(access_log=access_log)


def adopt_uvicorn(*, access_log: bool) -> None:
    """Hand uvicorn's lines to the root handler instead of uvicorn's own handlers and format.
    Without the access log, `uvicorn.access` has no handler at all, which uvicorn reads as
    "do not log requests" (it checks `hasHandlers()` for each connection), so the setting
    holds even when uvicorn was started without `--no-access-log`."""
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _Renamed) for f in errors.filters):
        errors.addFilter(_Renamed("uvicorn"))
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = access_log


class _Renamed(logging.Filter):
    """Shows a logger's lines under another name: uvicorn logs "Started server process" and
    the like to `uvicorn.error`, which reads as an error in front of every line."""

    def __init__(self, shown: str) -> None:
        super().__init__()
        self.shown = shown

    def filter(self, record: logging.LogRecord) -> bool:
        record.name = self.shown
        return True
