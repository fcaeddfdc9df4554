"""The contract every registered algorithm keeps, checked once over all of them.

Each runs its tiny config (`tests/tiny_configs.py`): its model survives a trip through a model
file; the same seed gives the same model whatever the global random state; a stop checkpoints
once (never twice for the same step) and resuming from it finishes the run, with exactly the
uninterrupted model where the algorithm promises it (`Algorithm.exact_resume`); its config
rejects unknown fields and out-of-range numbers; its metrics use the documented namespaces.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError

import ml
from ml.core.errors import TrainingStopped
from ml.core.hooks import NullHooks, RecordingHooks
from ml.core.metrics import check_name
from ml.core.model import TrainedModel, load_bytes
from ml.core.training import budget
from tests.tiny_configs import TINY_CONFIGS

NAMES = sorted(ml.ALGORITHMS)


def train(name: str, seed: int = 0, **kwargs: Any) -> TrainedModel:
    algorithm = ml.ALGORITHMS[name]
    config = algorithm.config.model_validate(TINY_CONFIGS[name])
    return algorithm.run(config, seed=seed, hooks=kwargs.pop("hooks", NullHooks()), **kwargs)


def assert_same_state(a: Any, b: Any) -> None:
    """Equal nested containers, tensors compared exactly."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            assert_same_state(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_state(x, y)
    else:
        assert a == b


def same_state(a: Any, b: Any) -> bool:
    try:
        assert_same_state(a, b)
    except AssertionError:
        return False
    return True


def weights_only_trip(state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint through `torch.save` and `torch.load(weights_only=True)`, as the worker
    stores it."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[TrainedModel, RecordingHooks]]:
    """One recorded tiny run of each algorithm, seed 0, shared by the tests below."""
    out = {}
    for name in NAMES:
        hooks = RecordingHooks()
        out[name] = (train(name, hooks=hooks), hooks)
    return out


def test_every_registered_algorithm_has_a_tiny_config() -> None:
    assert set(TINY_CONFIGS) == set(ml.ALGORITHMS)
    for name, algorithm in ml.ALGORITHMS.items():
        assert algorithm.name == name
        assert algorithm.config.model_validate(TINY_CONFIGS[name])


@pytest.mark.parametrize("name", NAMES)
def test_save_and_load_round_trip(
    name: str, runs: dict[str, tuple[TrainedModel, RecordingHooks]]
) -> None:
    model, _ = runs[name]
    loaded = load_bytes(model.to_bytes())
    assert type(loaded) is type(model) and loaded.kind == model.kind
    assert loaded.metadata == model.metadata
    assert_same_state(loaded.state(), model.state())


@pytest.mark.parametrize("name", NAMES)
def test_metadata_describes_the_model(
    name: str, runs: dict[str, tuple[TrainedModel, RecordingHooks]]
) -> None:
    model, _ = runs[name]
    metadata = model.metadata
    json.dumps(metadata)
    assert {"kind", "algorithm", "shapes", "config", "seed", "versions", "summary"} <= set(metadata)
    assert metadata["kind"] == model.kind and metadata["algorithm"] == name
    assert metadata["seed"] == 0 and metadata["versions"]["torch"]
    config = ml.ALGORITHMS[name].config
    assert config.model_validate(metadata["config"]) == config.model_validate(TINY_CONFIGS[name])


@pytest.mark.parametrize("name", NAMES)
def test_metrics_and_progress(
    name: str, runs: dict[str, tuple[TrainedModel, RecordingHooks]]
) -> None:
    _, hooks = runs[name]
    assert hooks.metrics
    for metric in hooks.metrics:
        check_name(metric)  # a documented namespace (ml.core.metrics)
    total = budget(ml.ALGORITHMS[name].config.model_validate(TINY_CONFIGS[name]))
    assert hooks.progress[0] == (0, total)
    steps = [step for step, _ in hooks.progress]
    assert steps == sorted(set(steps))  # once per step, never backwards
    assert not hooks.warnings


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_model_whatever_the_global_random_state(name: str) -> None:
    torch.manual_seed(1)
    np.random.seed(1)
    first = train(name, seed=7)
    torch.manual_seed(2)
    np.random.seed(2)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state(legacy=False)
    second = train(name, seed=7)
    # Nothing global was drawn from or reseeded.
    assert torch.equal(torch.get_rng_state(), torch_state)
    now = np.random.get_state(legacy=False)
    assert isinstance(now, dict) and isinstance(numpy_state, dict)
    assert np.array_equal(now["state"]["key"], numpy_state["state"]["key"])
    assert now["state"]["pos"] == numpy_state["state"]["pos"]
    assert_same_state(first.state(), second.state())
    assert first.metadata["summary"] == second.metadata["summary"]
    if ml.ALGORITHMS[name].family != "dp":  # dynamic programming draws nothing random
        assert not same_state(first.state(), train(name, seed=8).state())


@pytest.mark.parametrize("name", NAMES)
def test_stop_checkpoints_once_and_resume_finishes_the_run(name: str) -> None:
    hooks = RecordingHooks(stop_after_checkpoints=1)
    with pytest.raises(TrainingStopped) as stopped:
        train(name, seed=1, hooks=hooks)
    # The stop came right after a scheduled checkpoint: it must not write the same one again.
    assert len(hooks.checkpoints) == 1
    checkpoint = weights_only_trip(hooks.checkpoints[0])
    assert checkpoint["step"] == stopped.value.step > 0

    resumed_hooks = RecordingHooks()
    resumed = train(name, seed=1, hooks=resumed_hooks, resume=checkpoint)
    assert resumed_hooks.progress[0][0] == checkpoint["step"]
    assert (
        min(step for values in resumed_hooks.metrics.values() for step, _ in values)
        > (checkpoint["step"])
    )
    straight = train(name, seed=1)
    if ml.ALGORITHMS[name].exact_resume:
        assert_same_state(resumed.state(), straight.state())
        assert resumed.metadata["summary"] == straight.metadata["summary"]
    else:  # not the uninterrupted model, but resuming is itself reproducible
        again = train(name, seed=1, resume=checkpoint)
        assert_same_state(resumed.state(), again.state())


@pytest.mark.parametrize("name", NAMES)
def test_a_stop_before_any_checkpoint_writes_one(name: str) -> None:
    hooks = RecordingHooks(stop_after_checkpoints=0)  # stop as soon as asked
    with pytest.raises(TrainingStopped) as stopped:
        train(name, seed=2, hooks=hooks)
    assert [c["step"] for c in hooks.checkpoints] == [stopped.value.step]
    resumed = train(name, seed=2, resume=weights_only_trip(hooks.checkpoints[0]))
    if ml.ALGORITHMS[name].exact_resume:
        assert_same_state(resumed.state(), train(name, seed=2).state())


@pytest.mark.parametrize("name", NAMES)
def test_config_vocabulary_and_rejection(name: str) -> None:
    config_class = ml.ALGORITHMS[name].config
    fields = config_class.model_fields
    tiny = TINY_CONFIGS[name]
    budget_field = "total_steps" if "total_steps" in fields else "max_iterations"
    assert budget(config_class()) == getattr(config_class(), budget_field)
    assert "checkpoint_interval" in fields and "iterations" not in fields
    if ml.ALGORITHMS[name].dataset_kinds:  # a `dataset` field, at the top or in `env`
        schema = json.dumps(config_class.model_json_schema())
        assert "dataset" in fields or ('"dataset"' in schema and "UploadedDataset" in schema)
    bad: list[dict[str, Any]] = [
        {**tiny, "unknown_field": 1},
        {**tiny, budget_field: 0},
        {**tiny, budget_field: 10**12},
        {**tiny, "checkpoint_interval": 0},
        {**tiny, "checkpoint_interval": -5},
    ]
    for config in bad:
        with pytest.raises(ValidationError):
            config_class.model_validate(config)
