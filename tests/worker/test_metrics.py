"""A worker counts the job messages it handles, by outcome, and serves the figures over
HTTP when given a port."""

from __future__ import annotations

import socket

import httpx
import pytest
from prometheus_client import REGISTRY

from worker import metrics


def count(task: str, outcome: str) -> float:
    labels = {"task": task, "outcome": outcome}
    return REGISTRY.get_sample_value("crucible_worker_jobs_total", labels) or 0.0


def test_outcomes_are_counted_and_errors_raised_on() -> None:
    done, skipped, errors = (
        count("train", "succeeded"),
        count("query", "skipped"),
        count("train", "error"),
    )
    assert metrics.observed("train", lambda: "succeeded") == "succeeded"
    metrics.observed("query", lambda: "skipped: leased by another worker")

    def broken() -> str:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        metrics.observed("train", broken)
    assert count("train", "succeeded") == done + 1
    assert count("query", "skipped") == skipped + 1
    assert count("train", "error") == errors + 1
    assert REGISTRY.get_sample_value("crucible_worker_busy") == 0


def test_the_figures_are_served_on_the_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics.serve(port)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "crucible_worker_jobs_total" in text and "process_resident_memory_bytes" in text
