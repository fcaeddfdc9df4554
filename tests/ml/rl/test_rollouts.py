"""Rollouts of every kind of policy (`ml.rl.rollouts`, the `rollouts` query): Gymnasium
environments with vector or image observations, continuous actions, tabular worlds; and the
episodes kept as a valid `trajectories` dataset."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

import ml
from ml.core.errors import QueryError
from ml.data import Dataset, parse_upload
from ml.queries.rollouts import RolloutsRequest, rollouts, trajectories_of
from tests.tiny_configs import TINY_CONFIGS


def tiny(name: str, **overrides: Any) -> ml.TrainedModel:
    return ml.train(name, {**TINY_CONFIGS[name], **overrides}, seed=0)


def stored(arrays: dict[str, Any]) -> Any:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return parse_upload("trajectories", buffer.getvalue(), max_bytes=10**8)


@pytest.mark.parametrize(
    ("name", "overrides", "observation_size"),
    [
        ("dqn", {}, 4),
        ("dqn", {"env": "PixelGridWorld-v0", "network": "conv", "hidden": [16]}, 50),
        ("td3", {}, 3),
    ],
)
def test_gymnasium_rollouts(name: str, overrides: dict[str, Any], observation_size: int) -> None:
    model = tiny(name, **overrides)
    answer = rollouts(model, RolloutsRequest(episodes=2, seed=5))
    assert answer == rollouts(model, RolloutsRequest(episodes=2, seed=5))  # the same episodes
    n = sum(answer.episode_lengths)
    assert answer.observations is not None and len(answer.observations) == n == len(answer.actions)
    assert len(answer.observations[0]) == observation_size and answer.returns is not None
    assert answer.rewards is not None
    np.testing.assert_allclose(
        answer.returns,
        [
            sum(answer.rewards[sum(answer.episode_lengths[:i]) :][:k])
            for i, k in enumerate(answer.episode_lengths)
        ],
        rtol=1e-5,
    )
    dataset = stored(trajectories_of(answer))
    assert dataset.summary["rows"] == n


def test_tabular_rollouts_end_at_terminal_states() -> None:
    model = ml.train("value_iteration", {"env": {"layout": ["S..", "..G"], "slip": 0.0}})
    answer = rollouts(model, RolloutsRequest(episodes=3, seed=0, max_steps=50))
    # Down then right twice: the first of the tied shortest paths (down comes before right).
    assert answer.episode_lengths == [3, 3, 3] and answer.states == [0, 3, 4] * 3
    assert answer.returns is None and answer.rewards is None
    assert stored(trajectories_of(answer)).summary["rows"] == 9


def test_an_uploaded_mdp_model_cannot_roll_out() -> None:
    arrays = {"P": np.eye(2)[:, None, :].repeat(1, axis=1), "R": np.zeros(2)}
    datasets = {"d": Dataset("mdp", arrays)}
    env = {"kind": "mdp", "dataset": {"kind": "uploaded", "id": "d"}}
    model = ml.train("value_iteration", {"env": env, "discount": 0.9}, datasets=datasets)
    with pytest.raises(QueryError, match="uploaded MDP"):
        rollouts(model, RolloutsRequest(episodes=1))
