"""What the numbers of each environment's observations and actions mean, so explanations
label a saliency bar "pole angle" rather than "feature 2" (the names from Gymnasium's
documentation of each environment; the pixel grid world's from `ml.rl.pixels`)."""

from __future__ import annotations

OBSERVATION_NAMES: dict[str, tuple[str, ...]] = {
    "CartPole-v1": ("cart position", "cart velocity", "pole angle", "pole angular velocity"),
    "Acrobot-v1": ("cos θ1", "sin θ1", "cos θ2", "sin θ2", "θ1 velocity", "θ2 velocity"),
    "MountainCar-v0": ("position", "velocity"),
    "CarOnHill-v0": ("position", "speed"),
    "Pendulum-v1": ("cos θ", "sin θ", "angular velocity"),
    "MountainCarContinuous-v0": ("position", "velocity"),
}

ACTION_NAMES: dict[str, tuple[str, ...]] = {
    "CartPole-v1": ("push left", "push right"),
    "Acrobot-v1": ("torque -1", "torque 0", "torque +1"),
    "MountainCar-v0": ("accelerate left", "don't accelerate", "accelerate right"),
    "CarOnHill-v0": ("push left", "push right"),
    "PixelGridWorld-v0": ("up", "right", "down", "left"),
}


def observation_names(env_id: str, size: int) -> tuple[str, ...] | None:
    """The names of an observation's `size` numbers, when they are known and fit."""
    names = OBSERVATION_NAMES.get(env_id)
    return names if names is not None and len(names) == size else None


def action_names(env_id: str, n_actions: int) -> tuple[str, ...]:
    """The names of the `n_actions` discrete actions ("action i" when unknown)."""
    names = ACTION_NAMES.get(env_id)
    if names is not None and len(names) == n_actions:
        return names
    return tuple(f"action {i}" for i in range(n_actions))
