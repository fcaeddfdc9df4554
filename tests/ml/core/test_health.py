"""Health checks: a non-finite loss ends the run, a lasting suspicion warns once."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import ml
from ml.core.errors import TrainingAborted
from ml.core.health import HealthCheck, Suspicion
from ml.core.hooks import RecordingHooks
from ml.gan import adversarial, gan
from ml.rl import dqn
from tests.tiny_configs import TINY_CONFIGS

TOO_SMALL = Suspicion(
    code="too_small", message="x stays small", metric="losses/x", test=lambda v: v < 1.0
)


def test_non_finite_loss_aborts_as_diverged() -> None:
    hooks = RecordingHooks()
    health = HealthCheck(hooks)
    health.check(5, {"losses/x": 1.0, "eval/return": float("nan")})  # only losses abort
    with pytest.raises(TrainingAborted) as aborted:
        health.check(6, {"losses/x": float("inf")})
    assert aborted.value.code == "diverged" and aborted.value.step == 6
    assert "losses/x" in aborted.value.message


def test_a_lasting_suspicion_warns_once_until_it_clears() -> None:
    hooks = RecordingHooks()
    health = HealthCheck(hooks, [TOO_SMALL])
    for step in (1, 2):
        health.check(step, {"losses/x": 0.5})
        health.check(step, {"eval/other": 0.0})  # reports without the metric do not count
    assert hooks.warnings == []
    health.check(3, {"losses/x": 0.5})
    health.check(4, {"losses/x": 0.5})
    assert hooks.warnings == [(3, "too_small", "x stays small")]
    health.check(5, {"losses/x": 2.0})  # cleared: it may warn again after 3 more
    for step in (6, 7, 8):
        health.check(step, {"losses/x": 0.5})
    assert [w[0] for w in hooks.warnings] == [3, 8]


def gan_run(hooks: RecordingHooks, **overrides: Any) -> ml.TrainedModel:
    return ml.train("gan", {**TINY_CONFIGS["gan"], **overrides}, seed=0, hooks=hooks)


def test_gan_aborts_when_a_loss_diverges(monkeypatch: pytest.MonkeyPatch) -> None:
    def nan_loss(fake_logits: torch.Tensor, loss: str) -> torch.Tensor:
        return fake_logits.mean() * float("nan")

    monkeypatch.setattr(gan, "generator_loss", nan_loss)
    hooks = RecordingHooks()
    with pytest.raises(TrainingAborted) as aborted:
        gan_run(hooks)
    assert aborted.value.code == "diverged"
    assert "losses/generator" not in hooks.metrics  # the NaN is not reported as a metric


def test_gan_warns_when_the_discriminator_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    def perfect(*_: object) -> torch.Tensor:  # D tells every point apart
        return torch.tensor(1.0)

    monkeypatch.setattr(adversarial, "accuracy", perfect)
    hooks = RecordingHooks()
    gan_run(hooks, total_steps=300)  # three logs of the accuracy
    wins = [step for step, code, _ in hooks.warnings if code == "discriminator_wins"]
    assert wins == [300]


def test_dqn_warns_when_q_values_explode(monkeypatch: pytest.MonkeyPatch) -> None:
    make = dqn.make_q_network

    def inflated(config: dqn.DQNConfig, *args: Any) -> Any:
        net: Any = make(config, *args)  # an MLP QNetwork here
        last = net.body[-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():  # outputs around 1e4, far above CartPole's 1 / (1 - 0.99)
            last.bias.fill_(1e4)
        return net

    monkeypatch.setattr(dqn, "make_q_network", inflated)
    hooks = RecordingHooks()
    config = {**TINY_CONFIGS["dqn"], "total_steps": 1_000, "learning_rate": 1e-6}
    ml.train("dqn", config, seed=0, hooks=hooks)
    assert [code for _, code, _ in hooks.warnings] == ["q_values_explode"]
    assert hooks.metrics["rl/q_max_abs"][-1][1] > 1e3
