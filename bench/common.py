"""Timing helpers: best-of-N wall time, and one printed row per comparison."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_time(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """The fastest of `repeats` runs (the least disturbed by other work) and its result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def report(work: str, ours: float, anchor_name: str, anchor: float, note: str = "") -> None:
    ratio = anchor / ours if ours > 0 else float("inf")
    print(
        f"{work:<44} crucible {ours * 1e3:9.1f} ms | {anchor_name} {anchor * 1e3:9.1f} ms"
        f" | speed-up x{ratio:6.2f}  {note}",
        flush=True,
    )
