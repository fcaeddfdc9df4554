"""A job's own log: which records it keeps, and progress lines a person can read."""

from __future__ import annotations

import logging
import threading

from worker.job_log import (
    MAX_RECORDS,
    JobLogHandler,
    ProgressLog,
    format_seconds,
    progress_line,
    shown_metrics,
)


def test_progress_lines_say_how_far_how_long_and_how_well() -> None:
    latest = {"charts/sps": 812.0, "losses/td": 0.021349, "eval/return": 187.25}
    line = progress_line(5000, 20000, 185.4, latest)
    assert line == (
        "step 5000/20000 (25%), ETA 3 min 05 s; eval/return 187.2, losses/td 0.02135, "
        "charts/sps 812"
    )
    assert progress_line(3, 10, None, {}) == "step 3/10 (30%)"
    assert [format_seconds(s) for s in (42.4, 185, 3725)] == ["42 s", "3 min 05 s", "1 h 02 min"]
    assert shown_metrics({f"x/{i}": float(i) for i in range(9)}).count(",") == 3


def test_progress_is_logged_at_a_sane_rate_and_at_the_end() -> None:
    every = ProgressLog(every=30.0)
    due = [every.due(step, 100, now=t) for step, t in [(1, 0), (2, 10), (3, 31), (4, 40)]]
    assert due == [True, False, True, False]
    assert every.due(100, 100, now=41)  # the last step always
    assert every.eta(51, 100, now=100) == 100 / 50 * 49


def test_the_handler_keeps_ml_records_of_its_threads_only() -> None:
    handler = JobLogHandler(attempt=2, worker="w1")
    handler.watch(threading.get_ident())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = logging.getLogger("ml.test").level
    logging.getLogger("ml.test").setLevel(logging.INFO)
    try:
        logging.getLogger("ml.test").info("from the run %d", 7)
        logging.getLogger("celery").warning("not the job's")  # another library
        other = threading.Thread(target=lambda: logging.getLogger("ml.test").info("elsewhere"))
        other.start()
        other.join()
    finally:
        root.removeHandler(handler)
        logging.getLogger("ml.test").setLevel(old_level)
    kept = handler.pending()
    assert [(r["message"], r["attempt"], r["worker"]) for r in kept] == [
        ("from the run 7", 2, "w1")
    ]
    handler.drop(1)
    assert handler.pending() == []


def test_a_chatty_run_is_cut_with_one_line_that_says_so() -> None:
    handler = JobLogHandler(attempt=1, worker=None)
    for i in range(MAX_RECORDS + 50):
        handler.add("INFO", "worker.hooks", f"line {i}")
    kept = handler.pending()
    assert len(kept) == MAX_RECORDS + 1
    assert "the rest are in the worker's log" in kept[-1]["message"]


def test_the_last_report_is_kept_for_a_run_that_stops_between_lines() -> None:
    every = ProgressLog(every=30.0)
    assert every.due(0, 100, now=0) and every.unlogged is None
    assert not every.due(28, 100, now=1)  # a solver that converged at 28 of at most 100
    assert every.unlogged == (28, 100)
