"""Expected value difference against the number of demonstrations on objectworld: linear
MaxEnt IRL (`maxent_irl`) and deep MaxEnt IRL (`deep_maxent_irl`), the experiment of
Wulfmeier, Ondruska & Posner 2015 ("Maximum Entropy Deep Inverse Reinforcement Learning",
arXiv:1507.04888, the objectworld figure: EVD falls with more demonstrations, and the
network's stays below the linear reward's, which cannot express objectworld's reward).

The world: a 32 x 32 objectworld with C = 2 colours (Levine et al. 2011's benchmark size),
`{"kind": "objectworld", "size": 32, "n_colours": 2, "seed": s}` with the module's default
object count (51) and random move probability (0.3, the toolkit's determinism 0.7), its
continuous features (distances to the nearest object of each colour: `features: world`) for
both learners, discount 0.9 (both papers). Demonstrations: 4, 8, 16, 32, 64 and 128 of
`LENGTH` = 16 steps each from the optimal policy, from uniformly random starts (the service's
expert defaults). Levine's irl_toolkit draws objectworld examples of 8 steps in its GPIRL
example; 16 gives each demonstration a little more of the world and is the length of
tests/ml/irl/test_deep_maxent_irl.py; `--length` changes it.

Each run is `train(config, seed=s, hooks=NullHooks())` with the algorithm's own defaults
otherwise (linear: L-BFGS, l2 1.0; deep: a [32, 32] ReLU network, Adam 0.01, weight decay
1e-3), at most `MAX_ITERATIONS` = 200 gradient steps each (the configs' default), and the
EVD read from `model.metadata["summary"]["evd"]`: the true value of the optimal policy from
the world's start distribution minus that of the policy optimal for the learned reward (0 is
perfect). The world's seed and the run's seed are the same s, so each seed is another world
and other demonstrations. The table: mean +- sample standard deviation over the seeds, and
whether the deep reward's mean EVD is below the linear one's at every count (the figure's
shape); the per-seed values follow it.

    python -m bench.objectworld_evd [--quick] [--seeds N] [--counts 4 8 ...]
                                    [--max-iterations N] [--length L]

On one core the full run (5 seeds, 6 counts, both learners: 60 trainings) takes about a
minute (linear MaxEnt converges in about 10 L-BFGS steps, 0.1 s; the deep one runs its 200
Adam steps, about 1.4 s); `--quick` runs seed 0 at 4, 16 and 64 demonstrations.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from ml.core.hooks import NullHooks
from ml.irl.deep_maxent_irl import DeepMaxEntIRLConfig
from ml.irl.deep_maxent_irl import train as deep_train
from ml.irl.maxent_irl import MaxEntIRLConfig
from ml.irl.maxent_irl import train as linear_train

COUNTS = [4, 8, 16, 32, 64, 128]
SEEDS = [0, 1, 2, 3, 4]
LENGTH = 16
MAX_ITERATIONS = 200
DISCOUNT = 0.9
SIZE = 32
COLOURS = 2


def config(seed: int, n_demos: int, length: int, max_iterations: int) -> dict[str, Any]:
    return {
        "env": {"kind": "objectworld", "size": SIZE, "n_colours": COLOURS, "seed": seed},
        "demonstrations": {"source": "expert", "n_demos": n_demos, "length": length},
        "discount": DISCOUNT,
        "features": "world",
        "max_iterations": max_iterations,
    }


@dataclass
class Runs:
    evd: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    iterations: list[int] = field(default_factory=list)

    def add(self, summary: dict[str, Any], seconds: float) -> None:
        self.evd.append(float(summary["evd"]))
        self.iterations.append(int(summary["iterations"]))
        self.seconds.append(seconds)

    def describe(self) -> str:
        mean = statistics.fmean(self.evd)
        sd = statistics.stdev(self.evd) if len(self.evd) > 1 else 0.0
        return f"{mean:6.3f} +- {sd:5.3f}"


def run_one(kind: str, settings: dict[str, Any], seed: int) -> tuple[dict[str, Any], float]:
    start = time.perf_counter()
    if kind == "linear":
        model: Any = linear_train(MaxEntIRLConfig(**settings), seed=seed, hooks=NullHooks())
    else:
        model = deep_train(DeepMaxEntIRLConfig(**settings), seed=seed, hooks=NullHooks())
    return model.metadata["summary"], time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.objectworld_evd")
    parser.add_argument("--quick", action="store_true", help="one seed; 4, 16, 64 demos")
    parser.add_argument(
        "--seeds", type=int, default=None, help=f"seeds 0..N-1 (default {len(SEEDS)})"
    )
    parser.add_argument("--counts", type=int, nargs="+", default=None)
    parser.add_argument("--max-iterations", type=int, default=MAX_ITERATIONS)
    parser.add_argument("--length", type=int, default=LENGTH)
    args = parser.parse_args(argv or [])
    seeds = list(range(args.seeds)) if args.seeds else SEEDS[: 1 if args.quick else None]
    counts = args.counts or ([4, 16, 64] if args.quick else COUNTS)
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        blas = ", ".join(f"{i['internal_api']} {i['num_threads']}" for i in threadpool_info())
        print(f"threads: torch {torch.get_num_threads()}, BLAS/OpenMP: {blas}")
        print(
            f"objectworld {SIZE}x{SIZE}, C = {COLOURS}, discount {DISCOUNT}, demonstrations of "
            f"{args.length} steps, at most {args.max_iterations} iterations, seeds {seeds}",
            flush=True,
        )
        table: dict[int, dict[str, Runs]] = {}
        started = time.perf_counter()
        for n in counts:
            table[n] = {"linear": Runs(), "deep": Runs()}
            for seed in seeds:
                settings = config(seed, n, args.length, args.max_iterations)
                for kind in ("linear", "deep"):
                    summary, seconds = run_one(kind, settings, seed)
                    table[n][kind].add(summary, seconds)
            row = table[n]
            print(
                f"  {n:4d} demos: linear EVD {row['linear'].describe()} "
                f"({statistics.fmean(row['linear'].seconds):5.1f} s/run) | deep EVD "
                f"{row['deep'].describe()} ({statistics.fmean(row['deep'].seconds):5.1f} s/run)",
                flush=True,
            )
    print(f"\nEVD (mean +- sd over seeds {seeds}), {time.perf_counter() - started:.0f} s in all")
    print(f"{'n_demos':>7} | {'linear MaxEnt':>16} | {'deep MaxEnt':>16} | deep < linear")
    below = []
    for n, row in table.items():
        lower = statistics.fmean(row["deep"].evd) < statistics.fmean(row["linear"].evd)
        below.append(lower)
        print(
            f"{n:7d} | {row['linear'].describe():>16} | {row['deep'].describe():>16} | "
            f"{'yes' if lower else 'NO'}"
        )
    print(
        f"deep below linear at every count (Wulfmeier et al.'s shape): "
        f"{'yes' if all(below) else 'NO'}"
    )
    print("per seed (linear / deep EVD; iterations run):")
    for n, row in table.items():
        cells = ", ".join(
            f"seed {seed}: {a:.3f} / {b:.3f} ({i}/{j} it.)"
            for seed, a, b, i, j in zip(
                seeds,
                row["linear"].evd,
                row["deep"].evd,
                row["linear"].iterations,
                row["deep"].iterations,
                strict=True,
            )
        )
        print(f"  {n:4d} demos: {cells}")
    print(
        f"mean EVD ratio deep / linear: {np.round([ratio(r) for r in table.values()], 2).tolist()}"
    )


def ratio(row: dict[str, Runs]) -> float:
    return statistics.fmean(row["deep"].evd) / max(statistics.fmean(row["linear"].evd), 1e-12)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
