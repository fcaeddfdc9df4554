"""Playing a queue forward: when each queued job should start."""

from __future__ import annotations

from store.queue import play_forward


def test_one_worker_takes_the_jobs_ahead_one_after_another() -> None:
    assert play_forward([30.0], [10.0, 20.0, 5.0]) == [30.0, 40.0, 60.0]


def test_several_workers_take_whichever_frees_first() -> None:
    # Workers free at 5 and 50; jobs of 100 s each: the first two go to the first worker's
    # turn and the second worker's, the third to whichever is free next (105).
    assert play_forward([50.0, 5.0], [100.0, 100.0, 100.0]) == [5.0, 50.0, 105.0]


def test_unknown_durations_make_later_starts_unknown_not_wrong() -> None:
    assert play_forward([], [10.0]) == [None]  # no worker seen on the queue
    assert play_forward([None], [10.0]) == [None]
    assert play_forward([10.0], [None, 5.0]) == [10.0, None]
    assert play_forward([10.0, 20.0], [None, 5.0, 5.0]) == [10.0, 20.0, 25.0]
