"""Deep Deterministic Policy Gradient (Lillicrap et al. 2016, "Continuous control with deep
reinforcement learning").

A deterministic actor mu(s) and one critic Q(s, a) learn off-policy from replayed transitions:
the critic regresses on y = r + gamma * (1 - terminated) * Q'(s', mu'(s')) and the actor
climbs grad_a Q(s, a) at a = mu(s) (Algorithm 1), with target networks that trail by Polyak
averaging (Section 7).

DDPG is TD3 (`ml.rl.td3`, Fujimoto et al. 2018) without its three corrections, as
Stable-Baselines3 builds it: one critic instead of the twin min, the actor updated after every
critic update (policy_delay 1), and no target policy smoothing. This file is DDPG's defaults,
name and model kind; the loop, networks and update are `ml.rl.td3`'s. The paper's
Ornstein-Uhlenbeck exploration noise is replaced by uncorrelated Gaussian noise, which
Fujimoto et al. (Section 6.1) and later work found to do as well.

The defaults are TD3's (rl-baselines3-zoo tunes both alike on Pendulum-v1, and [64, 64]
layers learn as well as its [400, 300] here) with the TD3 switches off. On Pendulum-v1 the
mean greedy return on 20 fresh episodes after 20,000 steps is -121, -124 and -120 for seeds
0, 1 and 2 (a random policy: about -1,200), in about the time TD3 takes. Pendulum is
too easy to show TD3's gain; the harder tasks of Fujimoto et al. (MuJoCo) do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from ml.core.algorithm import Algorithm
from ml.core.hooks import Hooks
from ml.rl import td3
from ml.rl.td3 import TD3Config, TD3Model

__all__ = ["ALGORITHM", "DDPGConfig", "DDPGModel", "train"]


# -- config ------------------------------------------------------------------------------------
class DDPGConfig(TD3Config):
    """Hyper-parameters of a DDPG run: TD3's fields (`ml.rl.td3.TD3Config`) with the TD3
    corrections off by default; the defaults reach a greedy return well above a random
    policy's (about -1,200) on Pendulum-v1 within 20,000 steps."""

    twin_critics: bool = Field(
        False,
        description="Two critics and the smaller of their targets (TD3's clipped double "
        "Q-learning); DDPG learns one.",
    )
    policy_delay: int = Field(
        1,
        ge=1,
        le=1_000,
        description="Critic updates per actor and target update (DDPG's 1; TD3's d is 2).",
    )
    target_policy_noise: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        description="Standard deviation of TD3's target policy smoothing noise, as a "
        "fraction of the half-range; 0 (DDPG) turns smoothing off.",
    )
    target_noise_clip: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        description="Bound on the target smoothing noise's magnitude, as a fraction of the "
        "half-range (TD3's c; unused without smoothing).",
    )


# -- model -------------------------------------------------------------------------------------
class DDPGModel(TD3Model):
    """A trained DDPG actor and its critic (`ml.rl.td3.TD3Model` under DDPG's kind)."""

    kind: ClassVar[str] = "ddpg"
    config_class: ClassVar[type[TD3Config]] = DDPGConfig


# -- training ----------------------------------------------------------------------------------
def train(
    config: DDPGConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
) -> DDPGModel:
    """DDPG (Algorithm 1 of Lillicrap et al. 2016, Gaussian exploration), through TD3's
    loop with its corrections switched off by the config."""
    model = td3.train_actor_critic(
        config, DDPGModel, seed=seed, hooks=hooks, device=device, resume=resume
    )
    assert isinstance(model, DDPGModel)
    return model


ALGORITHM = Algorithm(
    name="ddpg",
    family="rl",
    description="Deep Deterministic Policy Gradient (Lillicrap et al. 2016): a deterministic "
    "actor and one critic learned off-policy with target networks and Gaussian exploration "
    "(TD3 with its twin critics, delayed updates and target smoothing switched off); "
    "continuous-action classic-control Gymnasium environments. TD3 learns more reliably.",
    config=DDPGConfig,
    train=train,
    model=DDPGModel,
    queue="gpu",
    cost=td3.cost,
    exact_resume=False,  # the environment's episode in progress is not checkpointed
)
