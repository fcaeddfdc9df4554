"""TD3 on Pendulum-v1: Crucible's defaults vs Stable-Baselines3 with rl-baselines3-zoo's settings.

Both train for the same 20,000 environment steps with the same seeds, one after the other per
seed (Crucible, SB3, Crucible, SB3, ...) so that a slow spell of a shared machine hits both,
with torch and the BLAS libraries pinned to one thread (printed). SB3 runs the Zoo's tuned
Pendulum-v1 TD3 (gamma 0.98, Adam 1e-3, [400, 300], Gaussian noise 0.1, 10,000 random steps,
one gradient step per step, SB3's other defaults); Crucible runs `TD3Config()` as a user gets
it, its periodic greedy evaluations (and the best-evaluated actor it returns) included in the
timed work. Each model is then judged outside the timing on the same 20 fresh episodes.

The rows show the median wall seconds, the mean return of the seeds with its spread (the
standard deviation across seeds), and the ratio of Crucible's median time to SB3's.

`python -m bench bench.td3_pendulum`; BENCH_SEEDS (default 3) from the environment, and
BENCH_TD3_ZOO=1 to add Crucible with the Zoo's own hyper-parameters (same work as SB3).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from stable_baselines3 import TD3
from stable_baselines3.common.noise import NormalActionNoise

from bench.common import report
from ml.core.hooks import NullHooks
from ml.rl import td3
from ml.rl.envs import evaluate, make_env

ENV = "Pendulum-v1"
STEPS = 20_000
JUDGE_EPISODES, JUDGE_SEED = 20, 10_000  # fresh episodes, none seen during training
ZOO: dict[str, Any] = {  # rl-baselines3-zoo hyperparams/td3.yml, Pendulum-v1
    "gamma": 0.98,
    "buffer_size": 200_000,
    "learning_starts": 10_000,
    "gradient_steps": 1,
    "train_freq": 1,
    "learning_rate": 1e-3,
}
ZOO_NOISE, ZOO_NET = 0.1, [400, 300]

Policy = Callable[[np.ndarray], np.ndarray]


def pin_threads() -> str:
    """One thread for torch and every BLAS/OpenMP pool; what was set, as a line to print."""
    torch.set_num_threads(1)
    pools = ""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(1)
        pools = ", ".join(f"{p['internal_api']} {p['num_threads']}" for p in threadpool_info())
    except ImportError:  # threadpoolctl comes with scikit-learn; without it, torch's only
        pools = "threadpoolctl missing: BLAS pools not pinned"
    threads = f"torch threads {torch.get_num_threads()}, interop {torch.get_num_interop_threads()}"
    return f"{threads}; {pools}"


def crucible(seed: int, overrides: dict[str, Any]) -> Policy:
    model = td3.train(td3.TD3Config(**overrides), seed=seed, hooks=NullHooks(), device="cpu")
    return model.act


def crucible_zoo() -> dict[str, Any]:
    """The Zoo's hyper-parameters in Crucible's config (and SB3's other defaults)."""
    return {
        "gamma": ZOO["gamma"],
        "buffer_size": ZOO["buffer_size"],
        "learning_starts": ZOO["learning_starts"],
        "gradient_steps": ZOO["gradient_steps"],
        "train_frequency": ZOO["train_freq"],
        "learning_rate_actor": ZOO["learning_rate"],
        "learning_rate_critic": ZOO["learning_rate"],
        "exploration_noise": ZOO_NOISE,
        "hidden": ZOO_NET,
        "batch_size": 256,
        "tau": 0.005,
    }


def sb3(seed: int) -> Policy:
    agent = TD3(
        "MlpPolicy",
        make_env(ENV),
        action_noise=NormalActionNoise(np.zeros(1), ZOO_NOISE * np.ones(1)),
        policy_kwargs={"net_arch": ZOO_NET},
        seed=seed,
        device="cpu",
        verbose=0,
        **ZOO,
    )
    agent.learn(total_timesteps=STEPS)
    return lambda obs: agent.predict(obs, deterministic=True)[0]


@dataclass
class Row:
    label: str
    train: Callable[[int], Policy]
    seconds: list[float] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)

    def run(self, seed: int) -> None:
        start = time.perf_counter()
        policy = self.train(seed)
        self.seconds.append(time.perf_counter() - start)
        self.returns.append(float(np.mean(evaluate(policy, ENV, JUDGE_EPISODES, JUDGE_SEED))))
        print(
            f"  seed {seed}  {self.label:<34} {self.seconds[-1]:6.1f} s  return "
            f"{self.returns[-1]:7.1f}",
            flush=True,
        )

    def summary(self) -> str:
        spread = statistics.stdev(self.returns) if len(self.returns) > 1 else 0.0
        return (
            f"{self.label:<34} median {statistics.median(self.seconds):6.1f} s  return "
            f"{statistics.mean(self.returns):7.1f} +- {spread:5.1f} "
            f"(min {min(self.returns):.1f})"
        )


def main() -> None:
    print(pin_threads(), flush=True)
    seeds = list(range(int(os.environ.get("BENCH_SEEDS", "3"))))
    ours = Row("crucible td3 (defaults)", lambda seed: crucible(seed, {}))
    anchor = Row("stable-baselines3 td3 (zoo)", sb3)
    rows = [ours, anchor]
    if os.environ.get("BENCH_TD3_ZOO") == "1":
        rows.insert(1, Row("crucible td3 (zoo settings)", lambda s: crucible(s, crucible_zoo())))
    for seed in seeds:  # interleaved: A B A B
        for row in rows:
            row.run(seed)
    print(f"TD3 {ENV}, {STEPS} steps, seeds {seeds}; return on {JUDGE_EPISODES} fresh episodes")
    for row in rows:
        print("  " + row.summary())
    for row in rows:
        if row is anchor:
            continue
        ratio = statistics.median(row.seconds) / statistics.median(anchor.seconds)
        print(f"  {row.label}: time ratio crucible/sb3 = {ratio:.2f}", flush=True)
        report(
            f"TD3 {ENV}, {STEPS} steps, {row.label[len('crucible td3 ') :].strip('()')}",
            statistics.median(row.seconds),
            "stable-baselines3",
            statistics.median(anchor.seconds),
            f"return {statistics.mean(row.returns):.0f} vs {statistics.mean(anchor.returns):.0f}",
        )


if __name__ == "__main__":
    main()
