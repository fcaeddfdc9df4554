"""Schedules: hyper-parameters that move with the step (exploration, step sizes).

A schedule is a pure function of the step, so a resumed run is at the same point of every
schedule as the run it continues, with nothing to checkpoint.
"""

from __future__ import annotations


def linear(step: int, *, start: float, end: float, duration: float) -> float:
    """`start` at step 0, moving linearly to `end` at `duration`, then staying there.

    DQN's epsilon decays this way over a fraction of the run (Mnih et al. 2015, Methods),
    and a GAN's step sizes decay to zero over the whole run. A `duration` of 0 or less is
    already at `end`.
    """
    progress = 1.0 if duration <= 0 else min(1.0, step / duration)
    return start + progress * (end - start)
