"""Maximum-Entropy inverse reinforcement learning (Ziebart, Maas, Bagnell & Dey 2008,
"Maximum Entropy Inverse Reinforcement Learning", AAAI), in the causal form of Ziebart 2010.

An expert acts for a reward we do not see. MaxEnt IRL models its demonstrations as drawn
from the soft-optimal policy of a reward linear in features, r = F theta (state features,
or state-action ones: a weight vector per action), and fits theta by maximising the
max-ent objective (`ml.irl.maxent`), whose gradient is the gap between the demonstrations'
feature counts and the ones the model expects (Eq. 6):

    grad J(theta) = F^T (mu_E - rho(theta)) - l2 theta

rho from a backward pass (soft value iteration) and a forward pass (expected visitation
frequencies) over sparse P, for the demonstrations' own lengths (finite horizon) or for the
discounted infinite horizon. J is concave in theta and computed exactly, so L-BFGS with a
line search (`ml.irl.ascent`) reaches a tolerance in tens of steps where Adam needs hundreds;
Adam and plain steps remain available. The run stops as imitation's MCE IRL does: when no
state's visit count is off by more than `occupancy_tolerance`, or the gradient's norm is
below `tolerance`, or after `max_iterations`.

A Gaussian prior on theta (`l2`) matters with one-hot features: a deterministic expert never
enters most states off its paths, and the data only says those states are "worse"; without
the prior their rewards drift towards minus infinity. For the same reason a hazard the expert
always avoids gets no reward of its own: the learner knows it is avoided, not how bad it is.

The result: the learned reward, the values and greedy policy optimal for it, and its
soft-optimal policy (stationary, discounted). Every long computation lets a stop in
(`Run.interrupt_if_asked`) where theta and the optimiser are those of a step boundary, and the
demonstrations are drawn from the job's seed, so a stopped run resumes exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ml.core.algorithm import Algorithm
from ml.core.cost import Cost
from ml.core.hooks import Hooks
from ml.core.training import Run
from ml.irl import problem as irl
from ml.irl.ascent import Fit, Method, ascent
from ml.irl.features import state_features
from ml.irl.models import MaxEntIRLModel

LOG_INTERVAL = irl.LOG_INTERVAL


class MaxEntIRLConfig(irl.IRLConfig):
    """The world, the demonstrations and the optimiser; the defaults recover the 5x5 default
    grid's reward (Pearson correlation above 0.8) and a near-optimal policy."""

    reward: Literal["state", "state_action"] = Field(
        "state",
        description="r(s) = theta . f(s), or r(s, a) = theta_a . f(s), a weight vector per "
        "action (the demonstrations' actions then count too).",
    )
    optimizer: Method = Field(
        "lbfgs",
        description="lbfgs (quasi-Newton with a line search: the objective is concave), adam "
        "(imitation's choice) or sgd (plain gradient steps).",
    )
    learning_rate: float = Field(
        0.1,
        gt=0.0,
        le=100.0,
        description="Step size of adam and sgd; for lbfgs, the length of its first step.",
    )
    l2: float = Field(
        1.0,
        ge=0.0,
        le=100.0,
        description="Weight of a Gaussian prior on theta (L2 penalty l2/2 |theta|^2): keeps "
        "the weights of states the data says little about near 0.",
    )


def cost(config: MaxEntIRLConfig, *, datasets: Mapping[str, Any] | None = None) -> Cost:
    """Operations, from `irl.pass_cost`: each iteration evaluates the max-ent model about
    twice at most (a line search rarely halves), and every `eval_interval` iterations and at
    the end a report solves the learned reward's MDP. Per step: one evaluation and a solve,
    what lies between two stop checks at most."""
    irl.check_dataset(config, datasets)
    evaluation, solve, setup = irl.pass_cost(config, datasets)
    reports = config.max_iterations // config.eval_interval + 2
    return Cost(
        total=setup + 2 * config.max_iterations * evaluation + reports * solve,
        per_step=evaluation + solve,
        total_fields=("max_iterations", "env", "demonstrations.length"),
        step_fields=("env", "demonstrations.length"),
    )


def train(
    config: MaxEntIRLConfig,
    *,
    seed: int,
    hooks: Hooks,
    device: str | None = None,
    resume: dict[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
) -> MaxEntIRLModel:
    """Fit a linear reward to the demonstrations; NumPy and SciPy on the CPU (`device` is
    unused)."""
    mdp = irl.load_world(config, datasets)
    features = state_features(mdp, config.features)
    per_action = config.reward == "state_action"
    shape = (features.dim, mdp.n_actions) if per_action else (features.dim,)
    theta = np.zeros(int(np.prod(shape)))  # theta[k] or theta[k * A + a], updated in place
    optimiser = ascent(config.optimizer, len(theta), config.learning_rate)
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
        theta=theta,
        optimizer=optimiser,
    )
    interrupt = run.interrupt_if_asked

    def reward_of(weights: np.ndarray) -> np.ndarray:
        """r[s, 1] or r[s, a]."""
        r = features.reward(weights.reshape(shape))
        return r if per_action else r[:, None]

    def evaluate(weights: np.ndarray) -> Fit:
        solution = problem.solve(reward_of(weights), interrupt)
        gap = problem.gap(solution)  # g[s, a]
        gradient = features.pull_back(gap if per_action else gap.sum(axis=1)).reshape(-1)
        prior = 0.5 * config.l2 * float(weights @ weights)
        return Fit(solution.objective - prior, gradient - config.l2 * weights, solution)

    fit = evaluate(theta)
    while run.step < config.max_iterations:
        run.stop_if_asked()
        if problem.converged(fit.detail, float(np.linalg.norm(fit.gradient))):
            break
        fit = optimiser.step(theta, fit, evaluate)
        if optimiser.stalled:  # at the maximum to the precision of doubles
            break
        run.advance()
        reward = reward_of(theta)
        irl.check_bounded(run.step, reward)
        irl.log_step(run, problem, fit.detail, reward)
    return irl.finish(
        run,
        problem,
        MaxEntIRLModel,
        seed=seed,
        reward=reward_of(theta),
        solution=fit.detail,
        n_features=features.dim,
        theta=theta.reshape(shape),
    )


ALGORITHM = Algorithm(
    name="maxent_irl",
    family="irl",
    description="Maximum-entropy inverse RL (Ziebart et al. 2008): a linear reward learned "
    "from demonstrations (generated, uploaded or rolled out by a model) on a tabular world, "
    "and the greedy and soft-optimal policies for it.",
    config=MaxEntIRLConfig,
    train=train,
    model=MaxEntIRLModel,
    queue="cpu",
    cost=cost,
    dataset_kinds=("trajectories", "mdp"),
)
