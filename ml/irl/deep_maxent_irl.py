"""Maximum-Entropy Deep inverse reinforcement learning (Wulfmeier, Ondruska & Posner 2015,
"Maximum Entropy Deep Inverse Reinforcement Learning", arXiv:1507.04888).

The reward is a neural network of a state's features, r(s) = g_phi(f(s)), so it can be any
function of them: objectworld's reward (positive near two colours at once, negative near one)
is not linear in the distances, which linear MaxEnt cannot express. Training is MaxEnt IRL's
(`ml.irl.maxent`) with the chain rule one step longer (Algorithm 1 of the paper): the
objective's gradient with respect to each state's reward is the gap between the
demonstrations' and the soft policy's discounted visits,

    dJ/dr(s) = mu_E(s) - rho(s)

back-propagated through the network, with weight decay (the paper's l1/l2 regularisation on
phi) and Adam, and a Gaussian prior on the rewards themselves (`l2`, as linear MaxEnt's with
one-hot features): sampled demonstrations on a world with chance have visits no policy
reproduces exactly, the objective then has no maximum, and without the prior the network's
rewards grow into the thousands (and the demonstrations' likelihood falls) while it chases
them. With l2 0.001 on a 16x16 objectworld the rewards stay within about 50 and the EVD is
lower than without it (64 demonstrations, seeds 0-2: 0.32, 0.26, 0.35 against 0.71, 0.17,
0.49); on 32x32 it is lower with 64 demonstrations (0.59 against 0.75 on average) and higher
with 4 (2.51 against 1.77): a prior trades what few demonstrations say for a bounded reward.
The features are standardised (each column to mean 0, deviation 1 over the world's states),
and the model keeps that scaling so that new feature vectors are read alike.

Each iteration solves the soft-optimal policy of the current reward on the CPU (sparse
products), then takes one gradient step through the network on `device`; a stop inside the
solve leaves the network as it was, so a resumed run does the same step again and ends where
an uninterrupted one does.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field

from ml.core.algorithm import Algorithm
from ml.core.cost import TRAIN, Cost
from ml.core.hooks import Hooks
from ml.core.nets import ACTIVATION_CHOICES, Activation
from ml.core.optim import adam
from ml.core.seeding import resolve_device, seeded_torch
from ml.core.training import Run
from ml.data import Dataset
from ml.irl import problem as irl
from ml.irl.features import FeatureKind, standardise, state_features
from ml.irl.models import DeepMaxEntIRLModel, reward_network
from ml.tabular.objectworld import BinaryWorldEnv, ObjectWorldEnv
from ml.tabular.objectworld import n_features as world_features
from ml.tabular.worlds import EnvSpec, MDPEnv, size_of

LOG_INTERVAL = irl.LOG_INTERVAL


class DeepMaxEntIRLConfig(irl.IRLConfig):
    """The world, the demonstrations and the reward network; the defaults learn objectworld's
    non-linear reward from its continuous features."""

    env: EnvSpec = Field(
        default_factory=lambda: ObjectWorldEnv(size=16),
        description="The world (as for maxent_irl); the default is a 16x16 objectworld with "
        "2 colours, whose reward is not linear in its features.",
    )
    features: FeatureKind = Field(
        "world",
        description="The network's input: the world's own features (the default: "
        "objectworld's colour distances), onehot, coordinates or terrain.",
    )
    hidden_sizes: list[Annotated[int, Field(ge=1, le=1024)]] = Field(
        default_factory=lambda: [32, 32],
        max_length=6,
        description="Widths of the reward network's hidden layers.",
    )
    activation: Activation = Field(
        "relu",
        description=f"Hidden-layer activation of the reward network (the reward itself is "
        f"linear): {ACTIVATION_CHOICES}.",
    )
    learning_rate: float = Field(0.01, gt=0.0, le=1.0, description="Adam's step size.")
    weight_decay: float = Field(
        1e-3,
        ge=0.0,
        le=1.0,
        description="L2 penalty on the network's weights (Wulfmeier et al.'s regulariser).",
    )
    l2: float = Field(
        0.001,
        ge=0.0,
        le=100.0,
        description="Weight of a Gaussian prior on the rewards themselves (l2/2 sum_s r(s)^2, "
        "linear MaxEnt's prior with one-hot features): demonstrations whose visits no policy "
        "reproduces exactly leave the max-ent objective without a maximum, and without it the "
        "rewards grow without end.",
    )
    max_iterations: int = Field(
        200, ge=1, le=100_000, description="Gradient steps (one soft solve each)."
    )


def n_features(config: DeepMaxEntIRLConfig, datasets: Mapping[str, Any] | None) -> int:
    """The network's input width, for the cost estimate (without building the world)."""
    states, _, _ = size_of(config.env, datasets)
    if config.features == "onehot":
        return states
    if config.features == "terrain":
        return 3
    if config.features == "coordinates":
        return 5
    if isinstance(config.env, ObjectWorldEnv | BinaryWorldEnv):
        return world_features(config.env)
    if isinstance(config.env, MDPEnv):
        found = (datasets or {}).get(config.env.dataset.id)
        summary = found.summary if isinstance(found, Dataset) else dict(found or {})
        return int(summary.get("n_features", 1))
    return 1


def cost(config: DeepMaxEntIRLConfig, *, datasets: Mapping[str, Any] | None = None) -> Cost:
    """Operations, from `irl.pass_cost`, plus a forward and backward pass of the network
    over every state per iteration."""
    irl.check_dataset(config, datasets)
    evaluation, solve, setup = irl.pass_cost(config, datasets)
    states, _, _ = size_of(config.env, datasets)
    widths = [n_features(config, datasets), *config.hidden_sizes, 1]
    weights = sum(a * b for a, b in itertools.pairwise(widths))
    network = TRAIN * weights * states
    reports = config.max_iterations // config.eval_interval + 2
    return Cost(
        total=setup + config.max_iterations * (evaluation + network) + reports * solve,
        per_step=evaluation + network + solve,
        total_fields=("max_iterations", "env", "demonstrations.length", "hidden_sizes"),
        step_fields=("env", "demonstrations.length", "hidden_sizes"),
    )


def train(
    config: DeepMaxEntIRLConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
) -> DeepMaxEntIRLModel:
    """Fit a reward network to the demonstrations."""
    dev = resolve_device(device)
    mdp = irl.load_world(config, datasets)
    features = state_features(mdp, config.features)
    F = features.dense()  # F[s, k]
    mean, std = standardise(F)
    X = torch.as_tensor((F - mean) / std, dtype=torch.float32, device=dev)  # x[s, k]
    with seeded_torch(seed):
        network = reward_network(F.shape[1], config.hidden_sizes, config.activation)
    network = network.to(dev)
    optimizer = adam(network.parameters(), lr=config.learning_rate, device=dev)
    run = Run(hooks, config, log_interval=LOG_INTERVAL)
    problem = irl.start(
        run,
        config,
        mdp,
        features,
        seed=seed,
        resume=resume,
        datasets=datasets,
        models=models,
        network=network,
        optimizer=optimizer,
    )
    interrupt = run.interrupt_if_asked

    def current_reward() -> tuple[torch.Tensor, np.ndarray]:
        r = network(X)[:, 0]  # r[s], on the device
        return r, r.detach().double().cpu().numpy()[:, None]

    while run.step < config.max_iterations:
        run.stop_if_asked()
        r, reward = current_reward()
        irl.check_bounded(run.step, reward)
        solution = problem.solve(reward, interrupt)  # the network is unchanged until it ends
        gap = problem.gap(solution).sum(axis=1) - config.l2 * reward[:, 0]  # dJ/dr[s], prior
        if problem.converged(solution, float(np.linalg.norm(gap))):
            break
        optimizer.zero_grad(set_to_none=True)
        loss = -(torch.as_tensor(gap, dtype=torch.float32, device=dev) * r).sum()
        # Weight decay as an explicit L2 penalty on the weights (not the biases).
        decay = sum((p**2).sum() for n, p in network.named_parameters() if n.endswith("weight"))
        (loss + 0.5 * config.weight_decay * decay).backward()
        optimizer.step()
        run.advance()
        irl.log_step(run, problem, solution, reward)

    with torch.no_grad():
        _, reward = current_reward()
    return irl.finish(
        run,
        problem,
        DeepMaxEntIRLModel,
        seed=seed,
        reward=reward,
        solution=problem.solve(reward, interrupt),
        n_features=int(F.shape[1]),
        network=network,
        mean=mean,
        std=std,
    )


ALGORITHM = Algorithm(
    name="deep_maxent_irl",
    family="irl",
    description="Maximum-entropy deep inverse RL (Wulfmeier et al. 2015): a reward network "
    "over state features learned from demonstrations on a tabular world, and the greedy and "
    "soft-optimal policies for it.",
    config=DeepMaxEntIRLConfig,
    train=train,
    model=DeepMaxEntIRLModel,
    queue="cpu",
    cost=cost,
    dataset_kinds=("trajectories", "mdp"),
)
