"""Run every benchmark: `python -m bench` (or `make bench`)."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = [
    "bench.dp",
    "bench.dqn_cartpole",
    "bench.td3_pendulum",
    "bench.dispatch",
    "bench.serving",
    "bench.gan_mixtures",
    "bench.maxent_irl",
    "bench.objectworld_evd",
]


def main(names: list[str]) -> None:
    for name in names or BENCHMARKS:
        print(f"== {name}", flush=True)
        importlib.import_module(name).main()


if __name__ == "__main__":
    main(sys.argv[1:])
