"""The shared training core: the run skeleton, metric buffering, schedules, seeding, nets."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import BaseModel
from torch import nn

from ml.core.errors import ArtifactError, TrainingStopped
from ml.core.hooks import RecordingHooks
from ml.core.metrics import MetricBuffer, check_name
from ml.core.nets import mlp, polyak_update
from ml.core.optim import adam, set_learning_rate
from ml.core.schedules import linear
from ml.core.seeding import derived_seed, seeded_torch
from ml.core.training import KeepBest, Run, budget, cpu_copy


class Steps(BaseModel):
    total_steps: int = 10
    checkpoint_interval: int = 4


class Both(BaseModel):
    total_steps: int = 1
    max_iterations: int = 1


def loop(run: Run, net: nn.Module, until: int | None = None) -> None:
    """A toy loop in the shape the algorithms use."""
    run.start(None)
    while run.step < run.total:
        run.stop_if_asked()
        with torch.no_grad():
            net.weight.add_(1.0)  # type: ignore[operator]
        run.metrics.add("losses/toy", torch.tensor(float(run.step)))
        run.advance()
        run.end_step()
    run.finish()


def test_metric_buffer_averages_with_one_flush() -> None:
    buffer = MetricBuffer()
    assert not buffer
    buffer.add("losses/a", torch.tensor(1.0))
    buffer.add("losses/a", torch.tensor(3.0))
    buffer.add("charts/b", 2.0)
    buffer.add("charts/b", 4.0)
    buffer.add_all({"gan/c": torch.tensor(5.0, dtype=torch.float64)})
    buffer.set("charts/eps", 0.5)
    buffer.set("charts/eps", 0.25)
    assert buffer
    assert buffer.flush() == {"losses/a": 2.0, "charts/b": 3.0, "gan/c": 5.0, "charts/eps": 0.25}
    assert not buffer and buffer.flush() == {}
    with pytest.raises(ValueError, match="namespace"):
        buffer.add("loss", 1.0)
    for bad in ("td", "weights/td", "losses/"):
        with pytest.raises(ValueError):
            check_name(bad)


def test_run_logs_checkpoints_and_stops_without_duplicates() -> None:
    net = nn.Linear(1, 1, bias=False)
    hooks = RecordingHooks()
    run = Run(hooks, Steps(), log_interval=3)
    run.track(net=net)
    loop(run, net)
    assert [step for step, _ in hooks.metrics["losses/toy"]] == [3, 6, 9, 10]
    assert hooks.metrics["losses/toy"][0][1] == 1.0  # mean of steps 0, 1, 2
    # On schedule, and the final state once at the end (a later job may continue from it).
    assert [c["step"] for c in hooks.checkpoints] == [4, 8, 10]
    assert torch.equal(hooks.checkpoints[-1]["net"]["weight"], net.weight.detach())
    assert [s for s, _ in hooks.progress] == [0, 3, 6, 9, 10]
    # Copies, not views: the first checkpoint kept the weights of step 4.
    first = hooks.checkpoints[0]["net"]["weight"]
    assert not torch.equal(first, hooks.checkpoints[1]["net"]["weight"])

    stopping = RecordingHooks(stop_after_checkpoints=1)
    net = nn.Linear(1, 1, bias=False)
    run = Run(stopping, Steps(), log_interval=3)
    run.track(net=net)
    with pytest.raises(TrainingStopped) as stopped:
        loop(run, net)
    assert stopped.value.step == 4 and len(stopping.checkpoints) == 1


def test_resume_restores_tracked_objects_values_and_step() -> None:
    net = nn.Linear(2, 1)
    optimizer = adam(net.parameters(), lr=0.1, device=torch.device("cpu"))
    rng, noise, array = np.random.default_rng(0), torch.Generator().manual_seed(0), np.zeros(3)
    run = Run(RecordingHooks(), Steps(), log_interval=3)
    run.track(net=net, optimizer=optimizer, rng=rng, noise=noise, array=array)
    net(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    array[:] = [1.0, 2.0, 3.0]
    run.values["episodes"] = 5
    run.step = 4
    state = run.snapshot()
    buffer = io.BytesIO()
    torch.save(state, buffer)  # plain containers and tensors only
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    expected = (rng.random(), torch.rand(1, generator=noise).item())

    net2 = nn.Linear(2, 1)
    optimizer2 = adam(net2.parameters(), lr=0.1, device=torch.device("cpu"))
    rng2, noise2, array2 = np.random.default_rng(9), torch.Generator().manual_seed(9), np.zeros(3)
    hooks = RecordingHooks(stop_after_checkpoints=0)
    resumed = Run(hooks, Steps(), log_interval=3)
    resumed.track(net=net2, optimizer=optimizer2, rng=rng2, noise=noise2, array=array2)
    resumed.start(state)
    assert resumed.step == 4 and resumed.values == {"episodes": 5}
    assert array2.tolist() == [1.0, 2.0, 3.0]
    assert torch.equal(net2.weight, net.weight)
    assert optimizer2.state_dict()["state"][0]["exp_avg"].equal(
        optimizer.state_dict()["state"][0]["exp_avg"]
    )
    assert (rng2.random(), torch.rand(1, generator=noise2).item()) == expected
    assert hooks.progress == [(4, 10)]
    with pytest.raises(TrainingStopped):  # the step resumed from already has its checkpoint
        resumed.stop_if_asked()
    assert hooks.checkpoints == []
    with pytest.raises(ValueError, match="already"):
        resumed.track(net=net)
    stale = Run(RecordingHooks(), Steps(), log_interval=3)
    stale.track(net=net2, q_net=nn.Linear(1, 1))
    with pytest.raises(ArtifactError, match="q_net"):  # a checkpoint of another version
        stale.start(state)


def test_budget_is_one_field() -> None:
    assert budget(Steps()) == 10
    with pytest.raises(TypeError):
        budget(Both())


def test_keep_best_and_cpu_copy() -> None:
    net = nn.Linear(1, 1)
    best = KeepBest()
    assert best.offer(10, 1.0, net)
    with torch.no_grad():
        net.weight.fill_(7.0)
    assert not best.offer(20, 0.5, net)
    assert best.summary() == {
        "best_eval_return": 1.0,
        "best_eval_step": 10,
        "final_eval_return": 0.5,
    }
    restored = KeepBest()
    restored.load_state_dict(cpu_copy(best.state_dict()))
    restored.restore(net)
    assert net.weight.item() != 7.0
    copied: dict[str, Any] = cpu_copy({"a": [torch.ones(2)], "b": np.arange(2)})
    assert isinstance(copied["b"], torch.Tensor) and copied["a"][0].tolist() == [1.0, 1.0]


def test_linear_schedule() -> None:
    assert linear(0, start=1.0, end=0.0, duration=10) == 1.0
    assert linear(5, start=1.0, end=0.0, duration=10) == 0.5
    assert linear(50, start=1.0, end=0.04, duration=10) == pytest.approx(0.04)
    assert linear(0, start=1.0, end=0.5, duration=0) == 0.5


def test_polyak_update() -> None:
    target, online = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    assert target.running_mean is not None and online.running_mean is not None
    with torch.no_grad():
        online.weight.fill_(3.0)
        online.running_mean.fill_(1.0)
    polyak_update(target, online, 0.5)
    assert target.weight.tolist() == [2.0, 2.0] and target.running_mean.tolist() == [0.5, 0.5]
    polyak_update(target, online, 1.0)  # the hard copy is exact
    assert torch.equal(target.weight, online.weight)


def test_seeding_is_explicit_and_leaves_global_state_alone() -> None:
    state = torch.get_rng_state()
    with seeded_torch(3):
        a = mlp(2, [4], 1)
    with seeded_torch(3):
        b = mlp(2, [4], 1)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    seeds = {derived_seed(0, stream, step) for stream in range(3) for step in range(3)}
    assert len(seeds) == 9 and derived_seed(0, 1) == derived_seed(0, 1)


def test_adam_is_fused_on_the_cpu_and_schedulable() -> None:
    optimizer = adam(nn.Linear(1, 1).parameters(), lr=0.1, device=torch.device("cpu"))
    assert optimizer.param_groups[0]["fused"]
    set_learning_rate(optimizer, 0.01)
    assert optimizer.param_groups[0]["lr"] == 0.01


# -- stops inside a step ---------------------------------------------------------------------
class Asked(RecordingHooks):
    """Hooks that count the questions `should_stop` is asked and answer what `stop` says."""

    def __init__(self) -> None:
        super().__init__()
        self.stop = False
        self.questions = 0

    def should_stop(self) -> bool:
        self.questions += 1
        return self.stop


class Rounds(BaseModel):
    total_steps: int = 6
    checkpoint_interval: int = 3


def train_rounds(
    hooks: Asked, resume: dict[str, Any] | None = None, stop_after: int | None = None
) -> tuple[Run, nn.Linear]:
    """A toy loop with a round of three random updates before each step's `advance`; asks
    to stop once it has made `stop_after` updates (counted over the run, resumed or not)."""
    net = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(1.0)
    rng = np.random.default_rng(0)
    run = Run(hooks, Rounds(), log_interval=2)
    run.track(net=net, rng=rng)
    run.values["updates"] = 0
    run.start(resume)
    while run.step < run.total:
        run.stop_if_asked()
        for _ in run.round(3):
            with torch.no_grad():
                net.weight.mul_(0.5).add_(float(rng.random()))
            run.values["updates"] += 1
            hooks.stop = run.values["updates"] == stop_after
        run.advance()
        run.end_step()
    run.finish()
    return run, net


def test_interrupt_asks_at_most_every_stop_check_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = Asked()
    run = Run(hooks, Steps(), log_interval=3)
    with pytest.raises(AssertionError, match="before start"):
        run.interrupt_if_asked()
    run.start(None)
    monkeypatch.setattr(Run, "stop_check_seconds", 3600.0)
    for _ in range(1000):
        run.interrupt_if_asked()
    assert hooks.questions == 1  # the first call asks; the rest fall within the hour
    monkeypatch.setattr(Run, "stop_check_seconds", 0.0)
    run = Run(hooks, Steps(), log_interval=3)
    run.start(None)
    for _ in range(10):
        run.interrupt_if_asked()
    assert hooks.questions == 11


def test_interrupt_inside_a_step_checkpoints_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Run, "stop_check_seconds", 0.0)
    net = nn.Linear(1, 1, bias=False)
    hooks = Asked()
    run = Run(hooks, Steps(), log_interval=3)
    run.track(net=net)
    run.start(None)
    run.advance()
    with torch.no_grad():
        net.weight.fill_(2.0)  # half of step 1's work
    hooks.stop = True
    with pytest.raises(TrainingStopped) as stopped:
        run.interrupt_if_asked()
    assert stopped.value.step == 1
    assert [c["step"] for c in hooks.checkpoints] == [1]
    assert hooks.checkpoints[0]["net"]["weight"].item() == 2.0  # the state as it is
    with pytest.raises(TrainingStopped):  # asked again within the same step: no second one
        run.interrupt_if_asked()
    assert len(hooks.checkpoints) == 1


def test_a_stop_inside_a_round_resumes_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Run, "stop_check_seconds", 0.0)
    straight_hooks = Asked()
    straight, straight_net = train_rounds(straight_hooks)
    assert [c["step"] for c in straight_hooks.checkpoints] == [3, 6]  # 6: the final state
    assert straight_hooks.checkpoints[0]["values"] == {"updates": 9}  # no round in progress
    assert straight_hooks.checkpoints[1]["values"] == {"updates": 18}

    # Stopped after update 5, step 2's second: the checkpoint says two of its three are done.
    hooks = Asked()
    with pytest.raises(TrainingStopped) as stopped:
        train_rounds(hooks, stop_after=5)
    assert stopped.value.step == 1
    assert hooks.checkpoints[-1]["values"] == {"updates": 5, "round": {"step": 1, "done": 2}}
    resumed, net = train_rounds(Asked(), resume=hooks.checkpoints[-1])
    assert torch.equal(net.weight, straight_net.weight)
    assert resumed.values == straight.values == {"updates": 18}  # none done twice

    # Stopped inside the round right after step 3's scheduled checkpoint: that checkpoint is
    # the one to resume from (no second one), and the round's updates are done again.
    hooks = Asked()
    with pytest.raises(TrainingStopped) as stopped:
        train_rounds(hooks, stop_after=11)
    assert stopped.value.step == 3 and [c["step"] for c in hooks.checkpoints] == [3]
    resumed, net = train_rounds(Asked(), resume=hooks.checkpoints[-1])
    assert torch.equal(net.weight, straight_net.weight)
