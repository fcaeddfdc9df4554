"""Versions recorded in every model's metadata, so a model says what produced it."""

from __future__ import annotations

import platform
from functools import lru_cache
from importlib import metadata


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    """A fresh dict each call (callers may keep it in a model's metadata)."""
    return dict(_versions())


@lru_cache(maxsize=1)
def _versions() -> dict[str, str | None]:
    """Read once per process: looking distributions up costs milliseconds per job."""
    return {
        "crucible": _version("crucible"),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "gymnasium": _version("gymnasium"),
        "scikit-learn": _version("scikit-learn"),
    }
