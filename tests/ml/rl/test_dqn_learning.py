"""DQN learns within its budgets, judged on fresh episodes: CartPole-v1 to a mean greedy
return of 475 within 50,000 steps for every seed, Acrobot-v1 to -100 within 100,000.

Each run stops at its first evaluation that reaches the target (`target_return`), and the
returned network (the best-evaluated one) is then judged on 20 episodes no evaluation saw.
Slow-marked (tens of seconds each on one CPU thread), but run in CI.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.core.hooks import RecordingHooks
from ml.rl.dqn import DQNConfig, train

FRESH_SEED = 10_000  # evaluation episodes during training start from other seeds


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solves_cartpole_within_50k_steps(seed: int) -> None:
    # The stop is decided on 20 evaluation episodes, not the default 10: on 10, seed 0 stopped
    # at 14,000 steps with a policy that averaged 468.75 on fresh episodes (2 of 20 fell
    # early); on 20 it trains to 18,000 and 485. Seeds 1 and 2 stop at 10,000 and 4,000 (500).
    config = DQNConfig(total_steps=50_000, target_return=490.0, eval_episodes=20)
    hooks = RecordingHooks()
    model = train(config, seed=seed, hooks=hooks)

    assert model.metadata["summary"]["steps"] <= 50_000
    returns = model.evaluate_policy(episodes=20, seed=FRESH_SEED)
    assert np.mean(returns) >= 475.0, returns
    # The training signals were reported along the way, and nothing looked wrong.
    for name in ("losses/td", "charts/epsilon", "charts/episodic_return", "eval/return"):
        assert hooks.metrics[name], name
    assert {"rl/q_mean", "rl/q_max_abs"} <= set(hooks.metrics)
    assert hooks.metrics["charts/epsilon"][0][1] > hooks.metrics["charts/epsilon"][-1][1]
    assert not hooks.warnings


@pytest.mark.slow
def test_solves_acrobot_within_100k_steps() -> None:
    config = DQNConfig(env="Acrobot-v1", total_steps=100_000, target_return=-80.0)
    model = train(config, seed=0, hooks=RecordingHooks())

    assert model.metadata["summary"]["steps"] <= 100_000
    returns = model.evaluate_policy(episodes=20, seed=FRESH_SEED)
    assert np.mean(returns) >= -100.0, returns
