"""Versions recorded in every model's metadata, so a model says what produced it."""

from __future__ import annotations

import platform
from importlib import metadata


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    return {
        "crucible": _version("crucible"),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "gymnasium": _version("gymnasium"),
        "scikit-learn": _version("scikit-learn"),
    }
