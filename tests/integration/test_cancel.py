"""A cancel takes effect within seconds whatever the config, not at the next step boundary:
a DQN run in the middle of a round of thousands of big-batch gradient steps, a MaxEnt IRL run
still drawing ten thousand demonstrations on a 32x32 grid. Real API, broker and worker.

This is the one place a latency is asserted, because the latency is the feature. What is
measured is the time from the cancel request's answer to the first read of the job that
says `cancelled` (reads every 50 ms): the heartbeat thread noticing the flag (every 0.5 s
with the stacks' HEARTBEAT_SECONDS; at most 1 s in production), the loop noticing the
heartbeat (`Run.stop_check_seconds`, plus one gradient step or demonstration time step), the
checkpoint and the final transition. The bound, 4 s, is twice the ~2 s promised, for a
2-core machine that other test runs share; before stops reached inside steps these runs took
tens of seconds to stop.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.stack import Stack

pytestmark = pytest.mark.integration

CANCEL_WITHIN_SECONDS = 4.0

# One round of 10,000 gradient steps on batches of 1,024 from step 200 on: minutes of work
# between two step boundaries.
LONG_ROUNDS_DQN = {
    "total_steps": 10_000,
    "learning_starts": 100,
    "train_frequency": 200,
    "gradient_steps": 10_000,
    "batch_size": 1_024,
    "eval_interval": 10_000,
    "checkpoint_interval": 10_000,
}

# Ten thousand demonstrations of 1,000 steps in a 128x128 room: seconds of set-up, and as
# many for each evaluation of the max-ent model, before the first gradient step ends.
SLOW_SETUP_IRL = {
    "env": {"kind": "grid", "size": [128, 128]},
    "discount": 0.99,
    "demonstrations": {"n_demos": 10_000, "length": 1_000},
    "max_iterations": 10,
}


@pytest.mark.parametrize(
    ("algorithm", "config"),
    [("dqn", LONG_ROUNDS_DQN), ("maxent_irl", SLOW_SETUP_IRL)],
    ids=["dqn-long-gradient-rounds", "maxent-irl-slow-setup"],
)
def test_cancel_takes_effect_within_seconds(
    stack: Stack, algorithm: str, config: dict[str, Any]
) -> None:
    job = stack.submit(algorithm, config, seed=3)
    running = stack.wait_for(job["id"], {"running"}, timeout=60)
    time.sleep(1.5)  # well into the round or the set-up, each of which lasts much longer
    assert stack.job(job["id"])["progress"]["step"] == running["progress"]["step"] == 0

    r = stack.client.post(f"/v1/jobs/{job['id']}/cancel")
    asked = time.monotonic()
    assert r.status_code == 202 and r.json()["cancel_requested"] is True
    while (status := stack.job(job["id"])["status"]) == "running":
        assert time.monotonic() - asked < 120, stack.logs()
        time.sleep(0.05)
    latency = time.monotonic() - asked

    print(f"{stack.name} {algorithm}: cancelled {latency:.2f} s after the request")
    assert status == "cancelled", stack.logs()
    assert latency < CANCEL_WITHIN_SECONDS, f"cancel took {latency:.1f} s\n{stack.logs()}"
    done = stack.job(job["id"])
    assert done["checkpoint_step"] is not None  # a stop checkpoints, inside a step too
