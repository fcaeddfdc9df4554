"""One tiny config per registered algorithm: runs of well under a second that still cross
every branch of the loop (a checkpoint before the end, a log, an evaluation).

The single place tests get small budgets from (the algorithm contract tests in
`tests/ml/test_algorithms.py`, the API tests); `tests/ml/test_algorithms.py` checks that every
algorithm in `ml.ALGORITHMS` has one. Each checkpoints before it ends, so a stop after the
first checkpoint leaves something to resume.
"""

from __future__ import annotations

from typing import Any

TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "gan": {
        "generator_hidden": [16, 16],
        "discriminator_hidden": [16],
        "batch_size": 32,
        "total_steps": 60,
        "checkpoint_interval": 20,
        "eval_interval": 30,
        "eval_samples": 200,
    },
    "wgan": {
        "generator_hidden": [16, 16],
        "discriminator_hidden": [16],
        "batch_size": 32,
        "total_steps": 60,
        "d_steps": 2,
        "checkpoint_interval": 20,
        "eval_interval": 30,
        "eval_samples": 200,
    },
    "wgan_gp": {
        "generator_hidden": [16, 16],
        "discriminator_hidden": [16],
        "batch_size": 32,
        "total_steps": 60,
        "d_steps": 2,
        "ema_decay": 0.9,  # so the contract tests cover the averaged generator too
        "checkpoint_interval": 20,
        "eval_interval": 30,
        "eval_samples": 200,
    },
    "dcgan": {
        "generator_channels": [8],
        "discriminator_channels": [8],
        "latent_dim": 4,
        "batch_size": 16,
        "total_steps": 40,
        "checkpoint_interval": 20,
        "eval_interval": 20,
        "eval_samples": 40,
    },
    "cgan": {
        "generator_channels": [8],
        "discriminator_channels": [8],
        "label_embedding_dim": 4,
        "latent_dim": 4,
        "batch_size": 16,
        "total_steps": 40,
        "checkpoint_interval": 20,
        "eval_interval": 20,
        "eval_samples": 40,
    },
    "dqn": {
        "total_steps": 600,
        "learning_starts": 100,
        "train_frequency": 50,
        "gradient_steps": 4,
        "batch_size": 32,
        "buffer_size": 1_000,
        "hidden": [32, 32],
        "eval_interval": 300,
        "eval_episodes": 2,
        "checkpoint_interval": 200,
    },
    "td3": {
        "total_steps": 600,  # three Pendulum-v1 episodes
        "learning_starts": 100,
        "batch_size": 32,
        "buffer_size": 1_000,
        "hidden": [16, 16],
        "eval_interval": 300,
        "eval_episodes": 1,
        "checkpoint_interval": 200,
    },
    "ddpg": {
        "total_steps": 600,  # three Pendulum-v1 episodes
        "learning_starts": 100,
        "batch_size": 32,
        "buffer_size": 1_000,
        "hidden": [16, 16],
        "eval_interval": 300,
        "eval_episodes": 1,
        "checkpoint_interval": 200,
    },
    "fqi": {
        "env": "CartPole-v1",
        "collect_episodes": 10,
        "regressor": {"kind": "extra_trees", "n_estimators": 4},
        "max_iterations": 4,
        "eval_interval": 2,
        "eval_episodes": 2,
        "checkpoint_interval": 2,
    },
    "fqe": {
        "env": "CartPole-v1",
        "collect_episodes": 10,
        "regressor": {"kind": "extra_trees", "n_estimators": 4},
        "max_iterations": 4,
        "start_states": 5,
        "eval_interval": 2,
        "checkpoint_interval": 2,
    },
    "value_iteration": {
        "env": {"kind": "grid", "layout": ["S..", ".#.", "..G"]},
        "discount": 0.9,
        "sweeps": "jacobi",  # a few dozen sweeps: checkpoints before it converges
        "checkpoint_interval": 5,
    },
    "policy_iteration": {
        "env": {"kind": "grid", "layout": ["S...", ".#..", "...G"]},
        "discount": 0.9,
        "checkpoint_interval": 1,
    },
    "policy_evaluation": {
        "env": {"kind": "grid", "layout": ["S..", ".#.", "..G"]},
        "discount": 0.9,
        "method": "iterative",  # sweeps, so a stop can come between two
        "checkpoint_interval": 5,
    },
    "maxent_irl": {
        "max_iterations": 20,
        "demonstrations": {"n_demos": 20, "length": 12},
        # Adam and no early stop, so that the run takes all its steps.
        "optimizer": "adam",
        "tolerance": 1e-9,
        "occupancy_tolerance": 0.0,
        "eval_interval": 10,
        "checkpoint_interval": 5,
    },
    "deep_maxent_irl": {
        "env": {"kind": "objectworld", "size": 6, "n_objects": 6},
        "max_iterations": 12,
        "demonstrations": {"n_demos": 10, "length": 8},
        "hidden_sizes": [8],
        "tolerance": 1e-9,
        "occupancy_tolerance": 0.0,
        "eval_interval": 5,
        "checkpoint_interval": 4,
    },
}
