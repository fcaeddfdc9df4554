"""A stop asked for in the middle of a long step takes effect inside it, not at the next step
boundary: DQN's rounds of gradient steps and its evaluations, a GAN's discriminator steps,
MaxEnt IRL's set-up, gradients and reports, `ml.rl.envs.evaluate`.

Each test asks to stop while a piece of work runs (a spy on the function doing it flips the
hooks' answer) and counts the work done after that, with `Run.stop_check_seconds` at 0 so
that every check asks; one test keeps the real rate limit. Where a stop leaves a checkpoint,
resuming from it finishes the run (exactly, where the algorithm promises it).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest
from scipy import sparse

import ml
from ml.core.errors import TrainingStopped
from ml.core.hooks import NullHooks, RecordingHooks
from ml.core.model import TrainedModel
from ml.core.training import Run
from ml.gan import gan
from ml.irl import demonstrations, problem
from ml.irl.maxent import Demonstrations
from ml.rl import dqn
from ml.rl.envs import evaluate
from ml.tabular import dp
from tests.ml.test_algorithms import assert_same_state, weights_only_trip
from tests.tiny_configs import TINY_CONFIGS


class Switch(RecordingHooks):
    """Hooks whose `should_stop` answers what the test last set."""

    def __init__(self) -> None:
        super().__init__()
        self.stop = False

    def should_stop(self) -> bool:
        return self.stop


@pytest.fixture
def ask_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Run, "stop_check_seconds", 0.0)


def stop_during_call(
    monkeypatch: pytest.MonkeyPatch, hooks: Switch, module: ModuleType | type, name: str, n: int
) -> list[int]:
    """Wrap `module.name` so that its `n`-th call asks to stop (before doing its work);
    returns a one-item list counting the calls."""
    real = getattr(module, name)
    calls = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == n:
            hooks.stop = True
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def count_calls(monkeypatch: pytest.MonkeyPatch, module: ModuleType | type, name: str) -> list[int]:
    """Wrap `module.name` to count its calls (in a one-item list)."""
    return stop_during_call(monkeypatch, Switch(), module, name, 0)


def run(name: str, hooks: Any, resume: dict[str, Any] | None = None, **config: Any) -> Any:
    algorithm = ml.ALGORITHMS[name]
    validated = algorithm.config.model_validate({**TINY_CONFIGS[name], **config})
    return algorithm.run(validated, seed=1, hooks=hooks, resume=resume)


def adam_steps(optimizer_state: dict[str, Any]) -> int:
    return int(optimizer_state["state"][0]["step"])


# -- ml.rl.envs.evaluate -------------------------------------------------------------------------
def test_evaluate_lets_a_stop_in_between_time_steps() -> None:
    forward_passes, checks = [0], [0]

    def policy(observations: np.ndarray) -> np.ndarray:
        forward_passes[0] += 1
        return np.zeros(len(observations), dtype=np.int64)

    def interrupt() -> None:
        checks[0] += 1
        if checks[0] == 4:
            raise TrainingStopped(0)

    with pytest.raises(TrainingStopped):
        evaluate(policy, "CartPole-v1", 10, seed=0, interrupt=interrupt)
    assert forward_passes[0] == 3  # the evaluation was abandoned at its fourth time step


# -- DQN -----------------------------------------------------------------------------------------
@pytest.mark.usefixtures("ask_every_time")
def test_dqn_stops_inside_a_round_of_gradient_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = Switch()
    # learning_starts 100 and train_frequency 50: the first round is at step 150.
    updates = stop_during_call(monkeypatch, hooks, dqn, "td_update", 10)
    # One environment and one-step returns: every step's transition is in the buffer at once
    # (n-step returns hold the last n - 1 of each environment back until they are summed).
    one_by_one: dict[str, Any] = {"n_envs": 1, "n_step": 1}
    with pytest.raises(TrainingStopped) as stopped:
        run("dqn", hooks, gradient_steps=5_000, **one_by_one)
    assert updates[0] == 10  # not the 5,000 of the round
    assert stopped.value.step == 150
    [checkpoint] = hooks.checkpoints
    assert checkpoint["step"] == 150 and adam_steps(checkpoint["optimizer"]) == 10
    assert checkpoint["buffer"]["size"] == 150

    monkeypatch.undo()
    resumed_hooks = RecordingHooks()
    model = run("dqn", resumed_hooks, weights_only_trip(checkpoint), gradient_steps=5, **one_by_one)
    assert resumed_hooks.progress[0][0] == 150 and model.metadata["summary"]["steps"] == 600


def test_dqn_stops_inside_a_round_with_the_real_rate_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hooks = Switch()
    updates = stop_during_call(monkeypatch, hooks, dqn, "td_update", 1)
    with pytest.raises(TrainingStopped):
        run("dqn", hooks, gradient_steps=5_000)
    # At most stop_check_seconds (0.05 s) of gradient steps after the question, against
    # seconds for the whole round.
    assert 1 <= updates[0] < 5_000


@pytest.mark.usefixtures("ask_every_time")
def test_dqn_stops_inside_an_evaluation_and_evaluates_on_resume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No learning, one evaluation of 20 episodes at the last step.
    config: dict[str, Any] = {"total_steps": 300, "learning_starts": 300, "eval_interval": 300}
    hooks = Switch()
    forward_passes = [0]
    real_policy = dqn.greedy_policy

    def counting_policy(*args: Any) -> Any:
        act = real_policy(*args)

        def counted(observations: np.ndarray) -> Any:
            forward_passes[0] += 1
            hooks.stop = forward_passes[0] == 5
            return act(observations)

        return counted

    monkeypatch.setattr(dqn, "greedy_policy", counting_policy)
    with pytest.raises(TrainingStopped) as stopped:
        run("dqn", hooks, eval_episodes=20, **config)
    assert forward_passes[0] == 5  # of an evaluation of hundreds of time steps
    assert stopped.value.step == 300 and [c["step"] for c in hooks.checkpoints] == [200, 300]
    assert "eval/return" not in hooks.metrics

    # Resumed at the end, the run makes the evaluation the stop cut short.
    resumed_hooks = RecordingHooks()
    model = run("dqn", resumed_hooks, weights_only_trip(hooks.checkpoints[-1]), **config)
    assert [step for step, _ in resumed_hooks.metrics["eval/return"]] == [300]
    assert model.metadata["summary"]["final_eval_return"] is not None


# -- GAN -----------------------------------------------------------------------------------------
def straight_gan(**config: Any) -> TrainedModel:
    return run("gan", NullHooks(), **config)  # type: ignore[no-any-return]


@pytest.mark.usefixtures("ask_every_time")
def test_gan_stops_between_discriminator_steps_and_resumes_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hooks = Switch()
    # The 30th discriminator step is the second of step 8 (d_steps 4): two of its four done.
    d_updates = stop_during_call(monkeypatch, hooks, gan, "discriminator_step", 4 * 7 + 2)
    with pytest.raises(TrainingStopped) as stopped:
        run("gan", hooks, d_steps=4)
    assert d_updates[0] == 30 and stopped.value.step == 7
    [checkpoint] = hooks.checkpoints
    assert checkpoint["values"]["round"] == {"step": 7, "done": 2}
    assert adam_steps(checkpoint["opt_d"]) == 30 and adam_steps(checkpoint["opt_g"]) == 7

    monkeypatch.undo()
    resumed = run("gan", NullHooks(), weights_only_trip(checkpoint), d_steps=4)
    straight = straight_gan(d_steps=4)
    assert_same_state(resumed.state(), straight.state())
    assert resumed.metadata["summary"] == straight.metadata["summary"]


@pytest.mark.usefixtures("ask_every_time")
def test_gan_stop_in_the_round_after_a_checkpoint_keeps_that_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hooks = Switch()
    # Step 20 is checkpointed (checkpoint_interval 20); the stop comes in step 21's round.
    stop_during_call(monkeypatch, hooks, gan, "discriminator_step", 4 * 20 + 3)
    with pytest.raises(TrainingStopped) as stopped:
        run("gan", hooks, d_steps=4)
    assert stopped.value.step == 20 and [c["step"] for c in hooks.checkpoints] == [20]
    monkeypatch.undo()
    resumed = run("gan", NullHooks(), weights_only_trip(hooks.checkpoints[0]), d_steps=4)
    assert_same_state(resumed.state(), straight_gan(d_steps=4).state())


# -- MaxEnt IRL ----------------------------------------------------------------------------------
@pytest.mark.usefixtures("ask_every_time")
def test_irl_stops_inside_the_experts_value_iteration(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = Switch()
    real_value_iteration = dp.value_iteration
    sweeps = [0]

    def counting_value_iteration(*args: Any, callback: Any = None, **kwargs: Any) -> Any:
        def counted(*sweep: Any) -> None:
            sweeps[0] += 1
            hooks.stop = sweeps[0] == 5
            if callback is not None:
                callback(*sweep)

        return real_value_iteration(*args, callback=counted, **kwargs)

    monkeypatch.setattr(dp, "value_iteration", counting_value_iteration)
    demos = count_calls(monkeypatch, demonstrations, "roll_out")
    with pytest.raises(TrainingStopped) as stopped:
        run("maxent_irl", hooks)
    assert sweeps[0] == 5  # of the dozens the expert needs
    assert demos[0] == 0  # the set-up stopped before the demonstrations
    assert stopped.value.step == 0 and [c["step"] for c in hooks.checkpoints] == [0]


@pytest.mark.usefixtures("ask_every_time")
def test_irl_stops_inside_the_demonstrations(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = Switch()
    demos = stop_during_call(monkeypatch, hooks, demonstrations, "roll_out", 1)
    counts = count_calls(monkeypatch, Demonstrations, "counts")
    with pytest.raises(TrainingStopped):
        run("maxent_irl", hooks)
    assert demos[0] == 1 and counts[0] == 0  # roll_out raised from its first time step

    checks = [0]

    def interrupt() -> None:
        checks[0] += 1
        if checks[0] == 3:
            raise TrainingStopped(0)

    P = sparse.csr_array(np.full((2, 2), 0.5))  # P[(s, a), s'], one action
    spec = demonstrations.Rollouts(n_demos=4, length=100)
    with pytest.raises(TrainingStopped):
        demonstrations.roll_out(
            P,
            np.ones((2, 1)),
            np.zeros(2, bool),
            np.full(2, 0.5),
            spec,
            np.random.default_rng(0),
            interrupt,
        )
    assert checks[0] == 3  # of the 100 time steps


@pytest.mark.usefixtures("ask_every_time")
def test_irl_stops_inside_a_gradient_and_resumes_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hooks = Switch()
    # Evaluations: one at the start, then one per step; the 8th is step 7's, and its
    # backward pass stops at its first step.
    stop_during_call(monkeypatch, hooks, problem, "finite_horizon", 8)
    with pytest.raises(TrainingStopped) as stopped:
        run("maxent_irl", hooks)
    assert stopped.value.step == 6
    assert [c["step"] for c in hooks.checkpoints] == [5, 6]
    monkeypatch.undo()
    assert_resumes_exactly(hooks.checkpoints[-1])


@pytest.mark.parametrize(("call", "step"), [(1, 10), (2, 20), (3, 20)])
@pytest.mark.usefixtures("ask_every_time")
def test_irl_stops_inside_a_report_or_the_final_solve_and_resumes_exactly(
    monkeypatch: pytest.MonkeyPatch, call: int, step: int
) -> None:
    # optimal_for's calls: the report at step 10, the final report and the final solve.
    hooks = Switch()
    stop_during_call(monkeypatch, hooks, problem.Problem, "optimal_for", call)
    with pytest.raises(TrainingStopped) as stopped:
        run("maxent_irl", hooks)
    assert stopped.value.step == step == hooks.checkpoints[-1]["step"]
    assert all(s < step for values in hooks.metrics.values() for s, _ in values)
    monkeypatch.undo()
    assert_resumes_exactly(hooks.checkpoints[-1])


def assert_resumes_exactly(checkpoint: dict[str, Any]) -> None:
    resumed = run("maxent_irl", NullHooks(), weights_only_trip(checkpoint))
    straight = run("maxent_irl", NullHooks())
    assert_same_state(resumed.state(), straight.state())
    assert resumed.metadata["summary"] == straight.metadata["summary"]
