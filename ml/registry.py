"""The algorithms Crucible can train, listed by explicit import.

Adding an algorithm is one module exporting `ALGORITHM` (see `ml.core.algorithm`) and one line
here; nothing is imported by string or chosen by an environment variable.
"""

from __future__ import annotations

from typing import Any

from ml.core.algorithm import Algorithm
from ml.gan import cgan, dcgan, gan, wgan, wgan_gp
from ml.irl import deep_maxent_irl, maxent_irl
from ml.rl import ddpg, dqn, fqe, fqi, td3
from ml.tabular import policy_evaluation, policy_iteration, value_iteration

ALGORITHMS: dict[str, Algorithm[Any]] = {
    module.ALGORITHM.name: module.ALGORITHM
    for module in (
        gan,
        wgan,
        wgan_gp,
        dcgan,
        cgan,
        dqn,
        td3,
        ddpg,
        fqi,
        fqe,
        value_iteration,
        policy_iteration,
        policy_evaluation,
        maxent_irl,
        deep_maxent_irl,
    )
}


def get_algorithm(name: str) -> Algorithm[Any]:
    try:
        return ALGORITHMS[name]
    except KeyError:
        known = ", ".join(sorted(ALGORITHMS))
        raise KeyError(f"unknown algorithm {name!r}; known: {known}") from None
