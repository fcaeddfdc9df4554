"""A config's estimated cost (`ml.core.cost`): defaults far under the bounds, blown-up configs
refused, estimates that grow with what they claim to and agree with real networks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import ml
from ml.core.cost import (
    DEFAULT_MAX_JOB_COST,
    DEFAULT_MAX_STEP_COST,
    Cost,
    check_cost,
    mlp_params,
    vi_sweeps,
)
from ml.core.errors import ConfigError, ConfigTooExpensive
from ml.core.nets import mlp
from ml.data import Dataset
from ml.gan import gan
from ml.rl import dqn

BIG_GRID = ["S" + "." * 31] + ["." * 32] * 30 + ["." * 31 + "G"]  # MaxEnt IRL's largest


def cost_of(name: str, config: dict[str, Any], **kwargs: Any) -> Cost:
    algorithm = ml.get_algorithm(name)
    return algorithm.cost(algorithm.config.model_validate(config), **kwargs)


def n_params(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", sorted(ml.ALGORITHMS))
def test_default_config_is_far_under_the_bounds(name: str) -> None:
    algorithm = ml.ALGORITHMS[name]
    cost = check_cost(
        algorithm,
        algorithm.config(),
        max_cost=DEFAULT_MAX_JOB_COST,
        max_step_cost=DEFAULT_MAX_STEP_COST,
    )
    assert 0 < cost.total <= DEFAULT_MAX_JOB_COST / 10
    assert 0 < cost.per_step <= DEFAULT_MAX_STEP_COST / 10
    assert cost.per_step <= cost.total
    fields = algorithm.config.model_fields
    for field in cost.total_fields + cost.step_fields:
        assert field.split(".")[0] in fields, f"{name}: {field} is not a config field"


# Configs within every field's own bounds whose total (or per-step) cost is past the bound.
TOO_EXPENSIVE = [
    ("gan", {"total_steps": 1_000_000, "d_steps": 10}, "total_steps"),
    ("gan", {"generator_hidden": [4096] * 8, "batch_size": 8192, "total_steps": 1}, "batch_size"),
    ("dqn", {"total_steps": 2_000_000, "train_frequency": 1, "gradient_steps": 10_000}, None),
    ("dqn", {"hidden": [4096] * 8, "batch_size": 4096, "total_steps": 1_200}, "batch_size"),
    (
        "maxent_irl",
        {
            "env": {"size": [256, 256]},
            "demonstrations": {"length": 500},
            "max_iterations": 100_000,
        },
        "max_iterations",
    ),
]


@pytest.mark.parametrize(("name", "config", "field"), TOO_EXPENSIVE)
def test_a_blown_up_config_is_refused(name: str, config: dict[str, Any], field: str | None) -> None:
    algorithm = ml.ALGORITHMS[name]
    with pytest.raises(ConfigTooExpensive) as caught:
        check_cost(
            algorithm,
            algorithm.config.model_validate(config),
            max_cost=DEFAULT_MAX_JOB_COST,
            max_step_cost=DEFAULT_MAX_STEP_COST,
        )
    error = caught.value
    assert isinstance(error, ConfigError) and isinstance(error, ml.ConfigError)
    assert error.code == "config_too_expensive"
    assert "lower" in error.message and name in error.message
    assert f"{DEFAULT_MAX_JOB_COST:.2g}" in error.message or (
        f"{DEFAULT_MAX_STEP_COST:.2g}" in error.message
    )
    if field is not None:
        assert error.field == field
    assert error.field is None or error.field.split(".")[0] in algorithm.config.model_fields


def test_the_message_names_both_bounds_when_both_are_passed() -> None:
    algorithm = ml.ALGORITHMS["gan"]
    config = algorithm.config(total_steps=1_000_000, batch_size=8192, generator_hidden=[4096] * 8)
    with pytest.raises(ConfigTooExpensive) as caught:
        ml.check_cost(algorithm, config, max_cost=1e15, max_step_cost=2e10)
    assert "1e+15" in caught.value.message and "2e+10" in caught.value.message
    assert caught.value.field == "batch_size"


def test_value_iteration_is_bounded_by_its_fields_alone() -> None:
    """Its largest config (1024 cells, ten million sweeps) is under the default bounds; a
    smaller bound still refuses it."""
    algorithm = ml.ALGORITHMS["value_iteration"]
    layout = ["S" + "." * 31] + ["." * 32] * 30 + ["." * 31 + "G"]
    config = algorithm.config.model_validate(
        {"env": {"kind": "grid", "layout": layout}, "max_iterations": 10_000_000}
    )
    cost = check_cost(
        algorithm, config, max_cost=DEFAULT_MAX_JOB_COST, max_step_cost=DEFAULT_MAX_STEP_COST
    )
    with pytest.raises(ConfigTooExpensive) as caught:
        check_cost(algorithm, config, max_cost=cost.total / 2, max_step_cost=cost.per_step)
    assert caught.value.field == "max_iterations"
    with pytest.raises(ConfigTooExpensive) as caught:
        check_cost(algorithm, config, max_cost=cost.total, max_step_cost=cost.per_step / 2)
    assert caught.value.field == "env.layout"


def test_a_config_at_the_bound_passes() -> None:
    algorithm = ml.ALGORITHMS["dqn"]
    cost = algorithm.cost(algorithm.config())
    assert check_cost(
        algorithm, algorithm.config(), max_cost=cost.total, max_step_cost=cost.per_step
    ) == (cost)


# (algorithm, field, smaller value, larger value, whether the per-step cost grows too)
GROWS = [
    ("gan", "total_steps", 1_000, 10_000, False),
    ("gan", "batch_size", 64, 1024, True),
    ("gan", "d_steps", 1, 5, False),
    ("gan", "generator_hidden", [64, 64], [512, 512], True),
    ("gan", "discriminator_hidden", [64], [512, 512, 512], True),
    ("gan", "eval_samples", 100, 10_000, True),
    ("gan", "latent_dim", 2, 256, True),
    ("dqn", "total_steps", 10_000, 100_000, False),
    ("dqn", "batch_size", 32, 1024, True),
    ("dqn", "hidden", [64], [512, 512], True),
    ("dqn", "gradient_steps", 16, 512, False),
    ("dqn", "train_frequency", 256, 4, False),
    ("dqn", "eval_episodes", 1, 100, True),
    ("dqn", "double_dqn", False, True, True),
    ("dqn", "env_id", "MountainCar-v0", "Acrobot-v1", True),
    ("value_iteration", "max_iterations", 1_000, 1_000_000, False),
    (
        "value_iteration",
        "env",
        {"kind": "grid", "layout": ["SG"]},
        {"kind": "grid", "layout": BIG_GRID},
        True,
    ),
    (
        "value_iteration",
        "env",
        {"kind": "frozen_lake"},
        {"kind": "frozen_lake", "map_name": "8x8"},
        True,
    ),
    ("maxent_irl", "max_iterations", 10, 1_000, False),
    ("maxent_irl", "demo_length", 5, 200, True),
    ("maxent_irl", "n_demos", 10, 5_000, False),
    ("maxent_irl", "discount", 0.5, 0.999, False),
    ("maxent_irl", "env", {"layout": ["S.G"]}, {"layout": BIG_GRID}, True),
    ("maxent_irl", "horizon", "finite", "infinite", True),
    ("deep_maxent_irl", "hidden_sizes", [8], [256, 256], True),
    ("deep_maxent_irl", "env", {"kind": "objectworld", "size": 8}, {"kind": "objectworld"}, True),
]


@pytest.mark.parametrize(("name", "field", "small", "large", "per_step"), GROWS)
def test_the_estimate_grows_with_its_fields(
    name: str, field: str, small: Any, large: Any, per_step: bool
) -> None:
    low, high = cost_of(name, {field: small}), cost_of(name, {field: large})
    assert high.total > low.total
    if per_step:
        assert high.per_step > low.per_step
    else:
        assert high.per_step >= low.per_step


def test_the_estimate_is_linear_in_the_budget() -> None:
    """Twice the steps, about twice the cost (the fixed parts are small)."""
    for name, field, n in [("gan", "total_steps", 10_000), ("dqn", "total_steps", 200_000)]:
        ratio = cost_of(name, {field: 2 * n}).total / cost_of(name, {field: n}).total
        assert 1.9 < ratio <= 2.01, name


# -- parameter counts and the ballpark, against networks actually built ------------------------
@pytest.mark.parametrize("sizes", [[3, 1], [2, 128, 128, 1], [7, 5, 300, 9, 2]])
def test_mlp_params_counts_what_mlp_builds(sizes: list[int]) -> None:
    assert mlp_params(sizes) == n_params(mlp(sizes[0], sizes[1:-1], sizes[-1]))


@pytest.mark.parametrize("batch_norm", [True, False])
def test_gan_parameter_counts_match_the_networks(batch_norm: bool) -> None:
    config = gan.GANConfig(
        generator_hidden=[64, 32, 16], discriminator_hidden=[8, 4], generator_batch_norm=batch_norm
    )
    generator, discriminator = gan.make_generator(config, 2), gan.make_discriminator(config, 2)
    g = mlp_params([2, 64, 32, 16, 2]) + (2 * (64 + 32 + 16) if batch_norm else 0)
    assert n_params(generator) == g
    assert n_params(discriminator) == mlp_params([2, 8, 4, 1])


@pytest.mark.parametrize("dueling", [False, True])
@pytest.mark.parametrize("hidden", [[64], [256, 128]])
def test_dqn_parameter_counts_match_the_network(dueling: bool, hidden: list[int]) -> None:
    config = dqn.DQNConfig(hidden=hidden, dueling=dueling)
    q_network = dqn.make_q_network(config, 6, 3)
    assert dqn.q_network_params(config, 6, 3) == n_params(q_network)


def test_gan_estimate_is_in_the_ballpark_of_real_networks() -> None:
    """6 x (G + D) parameters x batch x updates, counted on built networks, within 3x."""
    config = gan.GANConfig(
        generator_hidden=[256, 256],
        discriminator_hidden=[256, 256],
        batch_size=512,
        total_steps=200,
        d_steps=2,
    )
    params = n_params(gan.make_generator(config, 2)) + n_params(gan.make_discriminator(config, 2))
    updates = config.total_steps * (config.d_steps + 1)
    reference = 6 * params * config.batch_size * updates
    assert reference / 3 < gan.cost(config).total < 3 * reference


def test_dqn_estimate_is_in_the_ballpark_of_a_real_network() -> None:
    """6 x parameters x batch x gradient steps, counted on a built network, within 3x."""
    config = dqn.DQNConfig(
        hidden=[256, 256],
        batch_size=256,
        total_steps=5_000,
        learning_starts=1_000,
        train_frequency=4,
        gradient_steps=1,
    )
    params = n_params(dqn.make_q_network(config, 4, 2))  # CartPole-v1
    updates = (config.total_steps - config.learning_starts) // config.train_frequency
    reference = 6 * params * config.batch_size * updates
    assert reference / 3 < dqn.cost(config).total < 3 * reference


# -- uploaded data, value-iteration sweeps -----------------------------------------------------
def test_gan_on_uploaded_data_uses_its_dimension() -> None:
    config = {"dataset": {"kind": "uploaded", "id": "d1"}}
    unknown = cost_of("gan", config)
    narrow = cost_of("gan", config, datasets={"d1": {"n_features": 2}})
    wide = cost_of("gan", config, datasets={"d1": {"n_features": 100_000}})
    assert narrow.total < unknown.total < wide.total
    x = np.zeros((3, 100_000), np.float32)
    dataset = Dataset(kind="samples", arrays={"x": x}, summary={"n_features": 100_000})
    assert cost_of("gan", config, datasets={"d1": dataset}) == wide
    algorithm = ml.ALGORITHMS["gan"]
    parsed = algorithm.config.model_validate(
        {**config, "generator_hidden": [512, 512], "batch_size": 512}
    )
    check_cost(
        algorithm,
        parsed,
        max_cost=DEFAULT_MAX_JOB_COST,
        max_step_cost=DEFAULT_MAX_STEP_COST,
        datasets={"d1": {"n_features": 2}},
    )
    with pytest.raises(ConfigTooExpensive):
        check_cost(
            algorithm,
            parsed,
            max_cost=DEFAULT_MAX_JOB_COST,
            max_step_cost=DEFAULT_MAX_STEP_COST,
            datasets={"d1": {"n_features": 100_000}},
        )


def test_vi_sweeps_bound_the_sweeps_value_iteration_takes() -> None:
    from ml.tabular import dp
    from ml.tabular.gridworld import GridEnv, build_grid

    mdp = build_grid(GridEnv(goal_reward=1000.0, slip=0.1))
    for discount in (0.0, 0.5, 0.9, 0.99):
        taken = dp.value_iteration(mdp.P, mdp.R, discount, terminal=mdp.terminal).iterations
        bound = vi_sweeps(discount, tolerance=1e-8, reward_scale=1e3, cap=10**6)
        assert taken <= bound, discount
    assert vi_sweeps(1.0, tolerance=1e-8, reward_scale=1e3, cap=77) == 77
