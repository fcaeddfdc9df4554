"""DQN on CartPole-v1: Crucible vs Stable-Baselines3, same hyper-parameters, same steps.

Both train rl-zoo's tuned CartPole DQN for the same number of environment steps on one CPU
thread; Crucible's periodic evaluation is switched off so the timed work is the same (the
training loop only). Each model's greedy return is then measured on the same 20 episodes,
outside the timing.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from stable_baselines3 import DQN

import ml
from bench.common import report
from ml.rl.dqn import DQNModel
from ml.rl.envs import evaluate, make_env

STEPS = 20_000
SEED = 0
SHARED: dict[str, Any] = {
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1_000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
}


def crucible() -> DQNModel:
    config = {k: v for k, v in SHARED.items() if k != "train_freq"}
    config |= {
        "train_frequency": SHARED["train_freq"],
        "total_steps": STEPS,
        "eval_interval": STEPS,  # one evaluation, at the very end
        "eval_episodes": 1,
        "keep_best": False,
        "checkpoint_interval": STEPS,
        "hidden": [256, 256],
    }
    model = ml.train("dqn", config, seed=SEED, device="cpu")
    assert isinstance(model, DQNModel)
    return model


def sb3() -> DQN:
    agent = DQN(
        "MlpPolicy",
        make_env("CartPole-v1"),
        policy_kwargs={"net_arch": [256, 256]},
        seed=SEED,
        device="cpu",
        verbose=0,
        **SHARED,
    )
    return agent.learn(total_timesteps=STEPS)


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    ours = crucible()
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    theirs = sb3()
    t_theirs = time.perf_counter() - start

    r_ours = np.mean(evaluate(lambda o: ours.q_function(o).argmax(axis=1), "CartPole-v1", 20, 777))
    r_theirs = np.mean(
        evaluate(lambda o: theirs.predict(o, deterministic=True)[0], "CartPole-v1", 20, 777)
    )
    report(
        f"DQN CartPole-v1, {STEPS} steps",
        t_ours,
        "stable-baselines3",
        t_theirs,
        f"greedy return {r_ours:.0f} vs {r_theirs:.0f}",
    )


if __name__ == "__main__":
    main()
