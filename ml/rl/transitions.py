"""The transitions fitted Q iteration and evaluation (`ml.rl.fitted`) learn from, and the
policies over discrete actions that collect them or that FQE evaluates.

Transitions are four-tuples (s, a, r, s') with whether s' is terminal (`Transitions`): an
uploaded `transitions` dataset checked against the environment (`from_dataset`), or
episodes played in the job (`collect`) by a behaviour policy: uniformly random
(`UniformPolicy`) or epsilon-greedy on a finished model with Q-values (`ModelPolicy`). A
policy is its action probabilities pi(a|s) over a batch of observations (`Probabilities`),
which is all that collecting (by sampling) and FQE's bootstrap (by expectation) need.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ml.core.errors import ConfigError
from ml.core.references import ModelReference, resolve_model
from ml.core.seeding import Stream, derived_seed, numpy_rng
from ml.core.training import Interrupt, never
from ml.data import Dataset
from ml.rl.envs import EnvSpaces, make_env

# -- policy configs --------------------------------------------------------------------------------


class UniformPolicy(BaseModel):
    """Every action with the same probability."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["uniform"] = Field("uniform", description="Uniformly random actions.")


class ModelPolicy(ModelReference):
    """Epsilon-greedy on a finished model's Q-values: a uniformly random action with
    probability epsilon, its greedy action otherwise. The model (by id or name@alias) has
    discrete actions and Q-values (`q_function`: DQN, FQI...) and was trained on the same
    environment."""

    epsilon: float = Field(0.1, ge=0.0, le=1.0, description="Probability of a random action.")


Behaviour = Annotated[UniformPolicy | ModelPolicy, Field(discriminator="kind")]


# -- policies over discrete actions ----------------------------------------------------------------


class QModel(Protocol):
    """What a referenced model must expose to act: `ml.rl.dqn.DQNModel`,
    `ml.rl.fitted.FittedQModel`."""

    @property
    def n_actions(self) -> int: ...

    @property
    def env_id(self) -> str: ...

    def q_function(self, observations: np.ndarray) -> np.ndarray: ...


Probabilities = Callable[[np.ndarray], np.ndarray]  # observations [B, d] -> pi(a|s) [B, A]


def in_slices(
    probabilities: Probabilities, observations: np.ndarray, interrupt: Interrupt = never
) -> np.ndarray:
    """pi(.|s)[N, A] for many observations, a slice at a time with `interrupt` in between
    (a referenced model's Q-values over a whole dataset can take seconds)."""
    parts = []
    for start in range(0, len(observations), POLICY_ROWS):
        interrupt()
        parts.append(probabilities(observations[start : start + POLICY_ROWS]))
    return np.concatenate(parts)


POLICY_ROWS = 4_096


def uniform(n_actions: int) -> Probabilities:
    def probabilities(observations: np.ndarray) -> np.ndarray:
        return np.full((len(observations), n_actions), 1.0 / n_actions)

    return probabilities


def epsilon_greedy(q_function: Callable[[np.ndarray], np.ndarray], epsilon: float) -> Probabilities:
    """pi(a|s) = epsilon / A + (1 - epsilon) [a = argmax_a' Q(s, a')], ties to the first."""

    def probabilities(observations: np.ndarray) -> np.ndarray:
        q = np.asarray(q_function(observations))  # q[B, A]
        n_actions = q.shape[1]
        greedy = np.zeros(q.shape)
        greedy[np.arange(len(q)), q.argmax(axis=1)] = 1.0
        if epsilon == 0.0:
            return greedy
        return epsilon / n_actions + (1.0 - epsilon) * greedy

    return probabilities


def sample_actions(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row of pi [B, A], by inverse transform: one uniform draw per row."""
    u = rng.random(len(probabilities))[:, None]  # [B, 1]
    cumulative = np.cumsum(probabilities, axis=1)  # [B, A]
    return np.minimum((cumulative <= u).sum(axis=1), probabilities.shape[1] - 1)


def referenced_model(
    spec: ModelReference,
    models: Mapping[str, Any] | None,
    *,
    field: str,
    spaces: EnvSpaces,
    env_id: str,
) -> QModel:
    """The finished model a config names, checked to act in this environment."""
    model = resolve_model(spec, models, field=field)
    ref = spec.model
    if not callable(getattr(model, "q_function", None)):
        kind = getattr(model, "kind", type(model).__name__)
        raise ConfigError(
            f"model {ref!r} is a {kind} model, which has no Q-values over discrete actions",
            field=field,
        )
    model_env = getattr(model, "env_id", None)
    if model_env != env_id:
        raise ConfigError(f"model {ref!r} was trained on {model_env}, not {env_id}", field=field)
    if int(getattr(model, "n_actions", 0)) != spaces.n_actions:
        raise ConfigError(
            f"model {ref!r} has {getattr(model, 'n_actions', 0)} actions; {env_id} has "
            f"{spaces.n_actions}",
            field=field,
        )
    return cast(QModel, model)


def policy_probabilities(
    spec: UniformPolicy | ModelPolicy,
    models: Mapping[str, Any] | None,
    *,
    field: str,
    spaces: EnvSpaces,
    env_id: str,
) -> Probabilities:
    if isinstance(spec, UniformPolicy):
        return uniform(spaces.n_actions)
    model = referenced_model(spec, models, field=field, spaces=spaces, env_id=env_id)
    return epsilon_greedy(model.q_function, spec.epsilon)


# -- transitions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transitions:
    """Four-tuples (s, a, r, s') and whether s' is terminal."""

    observations: np.ndarray  # s[N, d] float32
    actions: np.ndarray  # a[N] int64
    rewards: np.ndarray  # r[N] float64
    next_observations: np.ndarray  # s'[N, d] float32
    terminated: np.ndarray  # [N] bool: s' is terminal, nothing to bootstrap
    episodes: int  # episodes they come from (0 when unknown: an upload)

    def __len__(self) -> int:
        return len(self.actions)


def collect(
    env_id: str,
    probabilities: Probabilities,
    *,
    episodes: int,
    max_steps: int,
    seed: int,
    interrupt: Interrupt = never,
) -> Transitions:
    """Play `episodes` episodes (or `max_steps` steps, whichever comes first) of `env_id`,
    drawing actions from `probabilities`; episode e starts from reset(seed=derived_seed(seed,
    ENV, e)) and actions come from the seed's generator, so the same seed gives the same
    transitions (a resumed run collects them again rather than checkpoint them)."""
    env = make_env(env_id)
    rng = numpy_rng(seed)
    observations: list[np.ndarray] = []
    next_observations: list[np.ndarray] = []
    actions: list[int] = []
    rewards: list[float] = []
    terminated: list[bool] = []
    played = 0
    try:
        while played < episodes and len(actions) < max_steps:
            observation, _ = env.reset(seed=derived_seed(seed, Stream.ENV, played))
            played += 1
            done = False
            while not done and len(actions) < max_steps:
                interrupt()
                obs = np.asarray(observation, dtype=np.float32)
                action = int(sample_actions(probabilities(obs[None]), rng)[0])
                observation, reward, term, trunc, _ = env.step(action)
                observations.append(obs)
                actions.append(action)
                rewards.append(float(reward))
                next_observations.append(np.asarray(observation, dtype=np.float32))
                terminated.append(bool(term))
                done = bool(term or trunc)
    finally:
        env.close()
    return Transitions(
        observations=np.stack(observations),
        actions=np.asarray(actions, dtype=np.int64),
        rewards=np.asarray(rewards, dtype=np.float64),
        next_observations=np.stack(next_observations),
        terminated=np.asarray(terminated, dtype=bool),
        episodes=played,
    )


def from_dataset(dataset: Dataset, spaces: EnvSpaces, env_id: str) -> Transitions:
    """An uploaded `transitions` dataset, checked to fit the environment: its observations
    have the environment's size and its actions are the environment's discrete ones."""
    arrays = dataset.arrays
    observations = arrays["observations"]
    if observations.ndim != 2 or observations.shape[1] != spaces.observation_dim:
        raise ConfigError(
            f"the dataset's observations are {list(observations.shape[1:])}; {env_id}'s are "
            f"[{spaces.observation_dim}]",
            field="dataset.id",
        )
    if "n_actions" not in arrays or arrays["actions"].ndim != 1:
        raise ConfigError(
            "the dataset's actions are continuous; this needs discrete actions", field="dataset.id"
        )
    if int(arrays["n_actions"]) > spaces.n_actions:
        raise ConfigError(
            f"the dataset has {int(arrays['n_actions'])} actions; {env_id} has {spaces.n_actions}",
            field="dataset.id",
        )
    return Transitions(
        observations=np.asarray(observations, dtype=np.float32),
        actions=np.asarray(arrays["actions"], dtype=np.int64),
        rewards=np.asarray(arrays["rewards"], dtype=np.float64),
        next_observations=np.asarray(arrays["next_observations"], dtype=np.float32),
        terminated=np.asarray(arrays["terminated"], dtype=bool),
        episodes=0,
    )


__all__ = [
    "ModelPolicy",
    "Probabilities",
    "Transitions",
    "UniformPolicy",
    "collect",
    "epsilon_greedy",
    "from_dataset",
    "in_slices",
    "policy_probabilities",
    "uniform",
]
