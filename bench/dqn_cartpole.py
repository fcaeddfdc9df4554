"""DQN on CartPole-v1, time to solve: Crucible's defaults against Stable-Baselines3 with RL
Zoo's tuned CartPole-v1 hyper-parameters.

Both learners train on the same seeds with the same periodic evaluation (10 greedy episodes
every 2,000 environment steps, the same episodes for both: `ml.rl.envs.evaluate` with the
seed Crucible's own evaluations use) and stop at the first evaluation whose mean reaches
475, within 50,000 steps. Measured per seed: wall seconds and environment steps until then
(evaluations included, on both sides), and the returned network's mean greedy return on 20
fresh episodes ("final"). The runs alternate (Crucible, SB3, Crucible, SB3...) so a
disturbance of the machine falls on both, on one pinned thread each (torch and the BLAS
pools, printed). Across seeds: the median and interquartile range, and the interquartile
mean (IQM) with a 95% bootstrap interval (Agarwal et al. 2021, "Deep RL at the Edge of the
Statistical Precipice"). Timings are printed, never asserted.

    python -m bench.dqn_cartpole [n_seeds]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from threadpoolctl import threadpool_info, threadpool_limits

import ml
from bench.common import report
from ml.core.seeding import Stream, derived_seed
from ml.rl.dqn import DQNModel
from ml.rl.envs import evaluate, make_env

ENV = "CartPole-v1"
SEEDS = [0, 1, 2, 3, 4]
BUDGET = 50_000
EVAL_INTERVAL = 2_000
EVAL_EPISODES = 10
TARGET = 475.0
FINAL_EPISODES = 20
FINAL_SEED = 10_000  # fresh episodes: no evaluation during training used these
# rl-baselines3-zoo, hyperparams/dqn.yml, CartPole-v1 (n_timesteps 5e4).
ZOO: dict[str, Any] = {
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
    "policy_kwargs": {"net_arch": [256, 256]},
}

Policy = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Result:
    seconds: float  # wall time to the first evaluation >= TARGET, or of the whole budget
    steps: int | None  # environment steps at that evaluation; None if never reached
    final: float  # the returned network's mean greedy return on fresh episodes


def eval_mean(policy: Policy, seed: int) -> float:
    return float(np.mean(evaluate(policy, ENV, EVAL_EPISODES, derived_seed(seed, Stream.EVAL))))


def crucible(seed: int) -> Result:
    config = {"total_steps": BUDGET, "eval_interval": EVAL_INTERVAL, "target_return": TARGET}
    start = time.perf_counter()
    model = ml.train("dqn", config, seed=seed, device="cpu")
    seconds = time.perf_counter() - start
    assert isinstance(model, DQNModel)
    summary = model.metadata["summary"]
    solved = summary["best_eval_return"] >= TARGET
    final = np.mean(model.evaluate_policy(FINAL_EPISODES, FINAL_SEED))
    return Result(seconds, summary["best_eval_step"] if solved else None, float(final))


class EvalUntilSolved(BaseCallback):
    """Crucible's evaluation schedule for SB3: stop at the first mean >= TARGET."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed
        self.solved_at: int | None = None

    def _on_step(self) -> bool:
        if self.num_timesteps % EVAL_INTERVAL != 0 and self.num_timesteps != BUDGET:
            return True
        policy = greedy_sb3(self.model)
        if eval_mean(policy, self.seed) >= TARGET:
            self.solved_at = self.num_timesteps
            return False
        return True


def greedy_sb3(agent: Any) -> Policy:
    return lambda obs: agent.predict(obs, deterministic=True)[0]


def sb3(seed: int) -> Result:
    start = time.perf_counter()
    agent = DQN("MlpPolicy", make_env(ENV), seed=seed, device="cpu", verbose=0, **ZOO)
    callback = EvalUntilSolved(seed)
    agent.learn(total_timesteps=BUDGET, callback=callback)
    seconds = time.perf_counter() - start
    final = np.mean(evaluate(greedy_sb3(agent), ENV, FINAL_EPISODES, FINAL_SEED))
    return Result(seconds, callback.solved_at, float(final))


def iqm(values: np.ndarray) -> float:
    """Mean of the middle half (the interquartile mean)."""
    v = np.sort(values)
    cut = len(v) // 4
    return float(np.mean(v[cut : len(v) - cut]))


def bootstrap_ci(
    values: np.ndarray, rng: np.random.Generator, n: int = 2_000
) -> tuple[float, float]:
    """95% percentile bootstrap interval of the IQM across seeds."""
    draws = [iqm(rng.choice(values, size=len(values))) for _ in range(n)]
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def describe(name: str, values: np.ndarray, unit: str) -> str:
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    low, high = bootstrap_ci(values, np.random.default_rng(0))
    return (
        f"  {name:<26} median {median:8.1f} {unit} (IQR {q1:.1f}-{q3:.1f}) | "
        f"IQM {iqm(values):8.1f} [95% CI {low:.1f}-{high:.1f}]"
    )


def main(n_seeds: int | None = None) -> None:
    torch.set_num_threads(1)
    with threadpool_limits(1):
        pools = [(p["internal_api"], p["num_threads"]) for p in threadpool_info()]
        print(f"torch threads {torch.get_num_threads()}, BLAS/OpenMP pools {pools}", flush=True)
        seeds = SEEDS[: n_seeds or len(SEEDS)]
        ours: list[Result] = []
        theirs: list[Result] = []
        for seed in seeds:  # interleaved: A B A B ...
            ours.append(crucible(seed))
            theirs.append(sb3(seed))
            a, b = ours[-1], theirs[-1]
            print(
                f"  seed {seed}: crucible {a.seconds:6.1f} s {a.steps} steps final {a.final:5.1f}"
                f" | sb3 {b.seconds:6.1f} s {b.steps} steps final {b.final:5.1f}",
                flush=True,
            )
    for label, results in (("crucible", ours), ("stable-baselines3", theirs)):
        solved = [r for r in results if r.steps is not None]
        print(f"{label}: solved {len(solved)}/{len(results)} seeds", flush=True)
        print(describe("seconds to 475", np.array([r.seconds for r in results]), "s"))
        if solved:
            print(describe("steps to 475", np.array([float(r.steps or 0) for r in solved]), ""))
        print(describe("final return", np.array([r.final for r in results]), ""))
    ratios = np.array([b.seconds / a.seconds for a, b in zip(ours, theirs, strict=True)])
    print(f"  per-seed wall-time ratio sb3/crucible: {np.round(ratios, 2).tolist()}")
    report(
        f"DQN {ENV} to {TARGET:.0f} ({len(seeds)} seeds, median)",
        float(np.median([r.seconds for r in ours])),
        "stable-baselines3",
        float(np.median([r.seconds for r in theirs])),
        f"steps {np.median([r.steps or BUDGET for r in ours]):.0f} vs "
        f"{np.median([r.steps or BUDGET for r in theirs]):.0f}",
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
