"""Max-ent IRL to the same occupancy tolerance: Crucible's max-ent core against imitation's
`MCEIRL`, on the same MDPs, features and expert occupancy.

Problems (finite horizon H, a state reward r(s), one-hot state features on both sides):

- imitation's ReasonablePOMDP (its tests/algorithms/test_mce_irl.py: 5 states, 3 actions,
  starts in 0 or 4, H = 20, discount 1 as its test), from its matrices (imitation's test
  module is not in its wheel), with one-hot observations instead of its 8-D ones;
- two grid worlds of `ml.tabular.gridworld.build_grid`: the service's default 5x5 IRL map
  (walls, slip 0.1, H = 20) and an open 8x8 room (slip 0.2, H = 30), discount 0.99, the
  goal absorbing, r(s) the reward for entering s (`mdp.state_reward`);
- seals' CliffWorld (7x4, H = 9, its `seals/CliffWorld-v0`), discount 1.

The expert and its occupancy. imitation's finite-horizon model counts H + 1 states per
episode, s_0 .. s_H, but its soft backup sees the rewards of s_0 .. s_{H-1} only: its last
policy step is uniform whatever the reward, so the move into s_H is random in its model.
Ours counts one state per decision of the demonstration (an episode of L rows counts L
states and every move between them is reward-aware). The soft-optimal occupancy of the true
reward is therefore not the same object in the two libraries, and neither is fed to either.
Both get the SAME occupancy D of an optimal expert: backward induction (value iteration over
the H decisions) on the true reward for the return sum_{t<H} gamma^t r(s_t), the return of
imitation's environment, ties among optimal actions broken uniformly at random, over H + 1
states. The last move, s_{H-1} -> s_H, does not change that return, so every action ties
there and the expert moves at random, which imitation's model can represent.
(`--natural-expert` instead makes the expert optimal for sum_{t<=H} gamma^t r(s_t), all
H + 1 states: its last move is then reward-aware, which imitation's model cannot represent;
on ReasonablePOMDP and CliffWorld imitation can then not come within 0.3 of D at all.)

D is the expert's EXACT expected visits (a forward pass of its policy: the limit of
infinitely many demonstrations), not the visits of sampled ones. Sampled visits on
stochastic dynamics are not the visits of any policy: with 200 demonstrations (seed 0,
`--demos 200`) the smallest linf gap that ANY policy reaches is 0.05 (5x5 grid), 0.03 (8x8),
0.035 (CliffWorld), and 0.027 on ReasonablePOMDP under imitation's uniform last move; still
0.002 to 0.014 with 10,000 demonstrations. No reward can then meet a 1e-3 tolerance: the
max-ent objective has no maximum (it grows without bound), imitation's Adam creeps on until
its budget ends, and our L-BFGS follows the objective to weights of 1e15, where the soft
passes lose their normalisation (an "occupancy" of 1,500 visits). Each problem's row prints
that floor, a linear programme over all (time-varying, stochastic) policies
(`occupancy_floor`). With `--demos N` the target is the visits of N demonstrations sampled
with seed DEMO_SEED (starts stratified: the start distribution times N, rounded by largest
remainders), and Crucible gets them as `Demonstrations` (passed to `finite_horizon` for
their log-likelihoods, as the service does).

- imitation: `MCEIRL(demonstrations=D, ...)` with D the discounted state visits of the
  H + 1 states (its `demo_state_om`, which sums to H + 1 at discount 1 as its own
  trajectories' would), a `TabularModelPOMDP` with the same P, a one-hot observation matrix,
  the true r, the start distribution and H, a linear `BasicRewardNet` (hid_sizes=[],
  use_action=False: one weight per state and a bias, torch's default initialisation under a
  fixed seed), its default optimiser (Adam, lr 1e-2), `linf_eps=1e-3`, its
  `grad_l2_eps=1e-4`, `train(max_iter=10_000)`, and `log_interval=None` with a logger
  writing nowhere (both constructor options) so that logging costs nothing.
- Crucible: `ml.irl.maxent.finite_horizon` driven as `ml.irl.maxent_irl.train` drives it:
  L = H + 1 decisions from the start distribution (`inject[H + 1]`), mu_E[s, a] the expert's
  discounted state-action visits (their sum over actions is D), one-hot features
  (r = theta), no prior (l2 = 0: imitation has none), L-BFGS of `ml.irl.ascent` (first step
  0.1, the config's default), theta from 0, stopping on the same two rules (linf
  state-occupancy gap <= 1e-3, gradient norm <= 1e-4), at most 1,000 iterations.

A side that does not reach the tolerance within its budget is reported as such, with its
final gap (and the speed-up is then a lower bound).

Quality: the greedy (optimal) policy of each learned reward, by backward induction over the
H decisions, is evaluated exactly under the TRUE reward: its expected return
sum_{t<H} gamma^t r(s_t) from the true start distribution, beside the expert's (the optimum).
"Same quality" means the two returns agree within 1% of the optimum's magnitude.

Time: the wall time of the fit alone (imitation's `train`, Crucible's optimisation loop;
not the imports, the problem, the demonstrations, the environment, the reward network or
`MCEIRL`'s constructor), REPEATS rounds interleaved (Crucible, imitation, Crucible, ...) on
one torch and one BLAS thread; the median, the range, and imitation's median over ours. Each
row also shows the soft passes (one backward and one forward pass: imitation one per Adam
step, ours one per line-search trial) and the time per pass, so the speed-up can be read as
fewer passes (L-BFGS: tens; Adam at lr 1e-2: thousands) times cheaper ones. The issue's
target: the same quality at least 5x faster on every problem. Measured (3 rounds): x1,100 to
x3,000, of which x2.5 to x4.5 per pass and the rest from needing a few hundred times fewer
passes.

imitation is not in the `bench` extra: imitation 1.0.1 pins gymnasium~=0.29 and
stable-baselines3~=2.2.1, which clash with Crucible's gymnasium>=1.0 and the extra's
stable-baselines3>=2.3 (pip: ResolutionImpossible). Its MCE IRL runs on our versions
installed without its dependencies (the rest of its pins, sacred, tensorboard, datasets,
optuna..., are not needed for `imitation.algorithms.mce_irl`):

    .venv/bin/python -m pip install -e '.[bench]'
    .venv/bin/python -m pip install --no-deps imitation==1.0.1 seals==0.2.1

Without it the bench still runs Crucible's side and prints a "skipped" line.

    python -m bench.maxent_irl [--quick] [--demos N] [--natural-expert] [--repeats N]

`--quick` runs one round on the first three problems (about 2.5 minutes, imitation's
thousands of Adam steps being most of it); the full bench takes about 9 minutes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import sparse
from scipy.optimize import linprog
from threadpoolctl import threadpool_info, threadpool_limits

from ml.irl.ascent import LBFGS, Fit
from ml.irl.maxent import Demonstrations, Dynamics, finite_horizon
from ml.irl.problem import DEFAULT_LAYOUT
from ml.tabular.gridworld import GridEnv, build_grid

TOLERANCE = 1e-3  # linf of the state-occupancy gap: imitation's linf_eps
GRAD_TOLERANCE = 1e-4  # imitation's grad_l2_eps, applied to both
OURS_BUDGET = 1_000  # L-BFGS iterations
THEIR_BUDGET = 10_000  # Adam iterations (imitation's max_iter)
N_DEMOS = 200
DEMO_SEED = 0
TORCH_SEED = 715298  # imitation's test seed, for its reward network's initial weights
REPEATS = 3
SAME_QUALITY = 0.01  # returns agree within 1% of |optimum|
TARGET_SPEEDUP = 5.0
INSTALL = ".venv/bin/python -m pip install --no-deps imitation==1.0.1 seals==0.2.1"

# imitation's ReasonablePOMDP (tests/algorithms/test_mce_irl.py): P[s, a, s'], r[s], start.
REASONABLE_P = np.array(
    [
        [[0, 0.9, 0.1, 0, 0], [0, 0, 0, 1, 0], [0, 0.1, 0.9, 0, 0]],
        [[0, 0, 0, 0.05, 0.95], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]],
        [[0, 0, 0, 0.05, 0.95], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]],
        [[0, 0, 0, 0, 1]] * 3,
        [[1, 0, 0, 0, 0]] * 3,
    ],
    dtype=np.float64,
)
REASONABLE_R = np.array([1.0, 2.0, 2.0, -20.0, 3.0])
REASONABLE_START = np.array([0.5, 0.0, 0.0, 0.0, 0.5])


@dataclass(frozen=True)
class Case:
    name: str
    P: np.ndarray  # P[s, a, s']
    r: np.ndarray  # r[s], the true state reward
    start: np.ndarray  # start[s]
    horizon: int  # H decisions; a demonstration has H + 1 states
    discount: float

    @property
    def n_states(self) -> int:
        return int(self.P.shape[0])

    @property
    def n_actions(self) -> int:
        return int(self.P.shape[1])


@dataclass
class Outcome:
    seconds: list[float]
    iterations: int
    gap: float  # linf of the final state-occupancy gap
    reward: np.ndarray  # r[s], learned
    evaluations: int  # soft backward and forward passes

    @property
    def reached(self) -> bool:
        return self.gap <= TOLERANCE


# --- the problems -----------------------------------------------------------------------


def grid_case(name: str, env: GridEnv, horizon: int, discount: float) -> Case:
    mdp = build_grid(env)  # terminal states (the goal) are already self-loops
    return Case(name, mdp.P, mdp.state_reward.astype(np.float64), mdp.start, horizon, discount)


def cliff_case() -> Case | str:
    try:
        from seals.diagnostics.cliff_world import CliffWorldEnv
    except ImportError as error:
        return f"seals is not installed ({error})"
    env = CliffWorldEnv(width=7, height=4, horizon=9, use_xy_obs=False)  # seals/CliffWorld-v0
    assert env.horizon is not None
    return Case(
        "seals CliffWorld 7x4",
        np.asarray(env.transition_matrix, dtype=np.float64),
        np.asarray(env.reward_matrix, dtype=np.float64),
        np.asarray(env.initial_state_dist, dtype=np.float64),
        int(env.horizon),
        1.0,
    )


def cases() -> list[Case | str]:
    return [
        Case("ReasonablePOMDP", REASONABLE_P, REASONABLE_R, REASONABLE_START, 20, 1.0),
        grid_case(
            "grid 5x5 (default IRL map)", GridEnv(layout=list(DEFAULT_LAYOUT), slip=0.1), 20, 0.99
        ),
        grid_case("grid 8x8 (open room)", GridEnv(size=(8, 8), slip=0.2), 30, 0.99),
        cliff_case(),
    ]


# --- the expert, its demonstrations and the true return --------------------------------


def backward_induction(case: Case, r: np.ndarray, decisions: int) -> list[np.ndarray]:
    """Q_k[s, a] = r(s) + gamma sum_s' P(s'|s, a) V_{k-1}(s'), V_0 = 0, for k = 1..decisions
    (k decisions left); returns Q_1 .. Q_decisions."""
    V = np.zeros(case.n_states)
    Qs = []
    for _ in range(decisions):
        Q = r[:, None] + case.discount * (case.P @ V)  # Q[s, a]
        V = Q.max(axis=1)
        Qs.append(Q)
    return Qs


def ties_uniform(Q: np.ndarray) -> np.ndarray:
    """pi[s, a]: uniform over the actions within rounding of the best."""
    best = Q.max(axis=1, keepdims=True)
    shortfall = best - Q
    optimal = shortfall <= 1e-9 * np.maximum(1.0, np.abs(best))
    return optimal / optimal.sum(axis=1, keepdims=True)


def expert_policies(case: Case, natural: bool) -> list[np.ndarray]:
    """pi_t[s, a] for t = 0..H (the action at s_H is uniform and counts for nothing)."""
    H, A = case.horizon, case.n_actions
    decisions = H + 1 if natural else H
    Qs = backward_induction(case, case.r, decisions)
    policies = [ties_uniform(Qs[decisions - 1 - t]) for t in range(decisions)]
    uniform = np.full((case.n_states, A), 1.0 / A)
    return policies + [uniform] * (H + 1 - decisions)


def stratified_starts(start: np.ndarray, n: int) -> np.ndarray:
    """s_0 of n episodes: n * start[s] of them from s, rounded by largest remainders."""
    exact = start * n
    counts = np.floor(exact).astype(np.int64)
    extra = np.argsort(-(exact - counts), kind="stable")[: n - int(counts.sum())]
    counts[extra] += 1
    return np.repeat(np.arange(len(start)), counts)


def draw(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of probabilities[i, j]."""
    u = rng.random(len(probabilities))[:, None]
    chosen = (probabilities.cumsum(axis=1) > u).argmax(axis=1)
    return chosen.astype(np.int64)


def demonstrations(case: Case, policies: list[np.ndarray], n: int, seed: int) -> Demonstrations:
    """n episodes of H + 1 (state, action) rows, flat as `Demonstrations` lays them out."""
    rng = np.random.default_rng(seed)
    H = case.horizon
    states = np.empty((n, H + 1), np.int64)
    actions = np.empty((n, H + 1), np.int64)
    s = stratified_starts(case.start, n)
    for t in range(H + 1):
        a = draw(policies[t][s], rng)
        states[:, t], actions[:, t] = s, a
        s = draw(case.P[s, a], rng)
    return Demonstrations(states.reshape(-1), actions.reshape(-1), np.full(n, H + 1))


@dataclass(frozen=True)
class Target:
    """What both sides fit: the expert's discounted state-action visits of the H + 1 states
    (its state visits, D, summed over actions), and where its episodes start."""

    mu_expert: np.ndarray  # mu_E[s, a]
    start: np.ndarray  # start[s]
    demos: Demonstrations | None  # the sampled ones; None for the exact occupancy

    @property
    def visits(self) -> np.ndarray:
        return self.mu_expert.sum(axis=1)  # D[s]

    def inject(self, horizon: int) -> np.ndarray:
        """inject[k, s]: every episode starts with H + 1 decisions left."""
        if self.demos is not None:
            return self.demos.injections(len(self.start))
        inject = np.zeros((horizon + 2, len(self.start)))
        inject[horizon + 1] = self.start
        return inject


def exact_target(case: Case, policies: list[np.ndarray]) -> Target:
    """The expected visits of the expert's H + 1 states: infinitely many demonstrations."""
    mass, mu = case.start.copy(), np.zeros((case.n_states, case.n_actions))
    for t, pi in enumerate(policies):
        flow = mass[:, None] * pi  # flow[s, a]
        mu += case.discount**t * flow
        mass = np.einsum("sa,sat->t", flow, case.P)
    return Target(mu, case.start, None)


def sampled_target(case: Case, policies: list[np.ndarray], n: int) -> Target:
    demos = demonstrations(case, policies, n, DEMO_SEED)
    start = demos.injections(case.n_states).sum(axis=0)  # = case.start (stratified) here
    return Target(demos.counts(case.n_states, case.n_actions, case.discount), start, demos)


def occupancy_floor(case: Case, visits: np.ndarray, start: np.ndarray, uniform_last: bool) -> float:
    """The smallest linf gap between `visits` and the discounted state visits of ANY policy
    (time-varying, stochastic) over the H + 1 states, with its move s_{H-1} -> s_H uniform
    as in imitation's model when `uniform_last`: a linear programme over x_t[s, a], the
    probability of (s, a) at step t. Above the tolerance, no reward can reach it."""
    S, A, T, gamma = case.n_states, case.n_actions, case.horizon + 1, case.discount
    n = T * S * A + 1  # x_0 .. x_H, then eps
    take = sparse.kron(sparse.eye_array(S), np.ones((1, A)))  # sum over a: [S, S * A]
    P_T = sparse.csr_array(case.P.reshape(S * A, S).T)  # [S', S * A]
    blocks = [sparse.hstack([take, sparse.csr_array((S, n - S * A))])]
    for t in range(T - 1):  # sum_a x_{t+1}[s', a] = sum_{s, a} x_t[s, a] P(s'|s, a)
        row = [sparse.csr_array((S, S * A))] * T
        row[t], row[t + 1] = -P_T, take
        blocks.append(sparse.hstack([*row, sparse.csr_array((S, 1))]))
    rhs = [start] + [np.zeros(S)] * (T - 1)
    if uniform_last:  # x_{H-1}[s, a] = (1 / A) sum_a' x_{H-1}[s, a']
        mix = sparse.eye_array(S * A) - sparse.kron(sparse.eye_array(S), np.full((A, A), 1 / A))
        row = [sparse.csr_array((S * A, S * A))] * T
        row[T - 2] = mix
        blocks.append(sparse.hstack([*row, sparse.csr_array((S * A, 1))]))
        rhs.append(np.zeros(S * A))
    visit = sparse.hstack([gamma**t * take for t in range(T)])  # [S, T * S * A]
    eps = sparse.csr_array(np.ones((S, 1)))
    bound = sparse.vstack([sparse.hstack([visit, -eps]), sparse.hstack([-visit, -eps])])
    cost = np.zeros(n)
    cost[-1] = 1.0
    found = linprog(
        cost,
        A_ub=bound,
        b_ub=np.concatenate([visits, -visits]),
        A_eq=sparse.vstack(blocks),
        b_eq=np.concatenate(rhs),
        bounds=(0, None),
        method="highs",
    )
    return float(found.x[-1]) if found.success else float("nan")


def true_return(case: Case, reward: np.ndarray, start: np.ndarray) -> float:
    """sum_{t<H} gamma^t E[r(s_t)] under the true reward, for the greedy policy of `reward`
    (backward induction over the H decisions, argmax)."""
    Qs = backward_induction(case, reward, case.horizon)
    mass, total = start.copy(), 0.0
    for t in range(case.horizon):
        greedy = Qs[case.horizon - 1 - t].argmax(axis=1)  # a[s]
        total += case.discount**t * float(mass @ case.r)
        mass = mass @ case.P[np.arange(case.n_states), greedy]  # P_pi[s, s']
    return total


# --- the two learners -------------------------------------------------------------------


def crucible(case: Case, target: Target) -> Callable[[], Outcome]:
    S, A = case.n_states, case.n_actions
    dynamics = Dynamics(sparse.csr_array(case.P.reshape(S * A, S)))
    mu_expert, demos = target.mu_expert, target.demos  # mu_E[s, a]
    inject = target.inject(case.horizon)  # inject[k, s]
    visits = target.visits  # D[s]

    def run() -> Outcome:
        start = time.perf_counter()
        evaluations = 0

        def evaluate(theta: np.ndarray) -> Fit:
            nonlocal evaluations
            evaluations += 1
            solution = finite_horizon(
                dynamics, theta[:, None], inject, case.discount, mu_expert, demos
            )
            return Fit(solution.objective, visits - solution.occupancy.sum(axis=1), solution)

        theta = np.zeros(S)  # r = theta: one-hot features
        optimiser = LBFGS(S, learning_rate=0.1)
        fit, iterations = evaluate(theta), 0
        while iterations < OURS_BUDGET:
            gap = float(np.abs(fit.gradient).max())  # one-hot: the gradient is the state gap
            if gap <= TOLERANCE or float(np.linalg.norm(fit.gradient)) <= GRAD_TOLERANCE:
                break
            fit = optimiser.step(theta, fit, evaluate)
            iterations += 1
        seconds = time.perf_counter() - start
        gap = float(np.abs(fit.gradient).max())
        return Outcome([seconds], iterations, gap, theta.copy(), evaluations)

    return run


def imitation_available() -> str | None:
    """None, or why imitation's MCE IRL cannot be imported."""
    try:
        import imitation.algorithms.mce_irl  # noqa: F401
        import seals.base_envs  # noqa: F401
    except ImportError as error:
        return str(error)
    return None


def imitation(case: Case, target: Target, logger: Any) -> Callable[[], Outcome]:
    from imitation.algorithms.mce_irl import MCEIRL
    from imitation.rewards.reward_nets import BasicRewardNet
    from seals.base_envs import TabularModelPOMDP

    S, visits = case.n_states, target.visits
    observations = np.eye(S, dtype=np.float32)  # one-hot
    env = TabularModelPOMDP(
        transition_matrix=case.P,
        observation_matrix=observations,
        reward_matrix=case.r,
        horizon=case.horizon,
        initial_state_dist=target.start,
    )

    def run() -> Outcome:
        # Not timed: the reward network and MCEIRL's constructor.
        with torch.random.fork_rng():
            torch.manual_seed(TORCH_SEED)
            net = BasicRewardNet(
                env.observation_space,
                env.action_space,
                use_action=False,
                use_next_state=False,
                use_done=False,
                hid_sizes=[],
            )
        mce = MCEIRL(
            visits,
            env,
            net,
            rng=np.random.default_rng(DEMO_SEED),
            discount=case.discount,
            linf_eps=TOLERANCE,
            grad_l2_eps=GRAD_TOLERANCE,
            log_interval=None,
            custom_logger=logger,
        )
        begin = time.perf_counter()
        occupancy = mce.train(max_iter=THEIR_BUDGET)
        seconds = time.perf_counter() - begin
        with torch.no_grad():
            reward = net(torch.as_tensor(observations), None, None, None).double().numpy()
        steps = [int(state["step"]) for state in mce.optimizer.state.values()]
        gap = float(np.abs(occupancy - visits).max())
        iterations = max(steps, default=0)  # one soft pass per Adam step
        return Outcome([seconds], iterations, gap, reward, iterations)

    return run


# --- the table ------------------------------------------------------------------------


def timed(sides: dict[str, Callable[[], Outcome]], repeats: int) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    for _ in range(repeats):
        for name, run in sides.items():  # interleaved: A B A B ...
            outcome = run()
            if name in outcomes:
                outcomes[name].seconds += outcome.seconds
            else:
                outcomes[name] = outcome
    return outcomes


def show(
    case: Case, outcomes: dict[str, Outcome], optimum: float, note: str
) -> tuple[float, bool, bool] | None:
    """Print one problem's rows; when both sides ran, (imitation's median time over ours,
    same quality and ours reached the tolerance, imitation did not: the speed-up is a lower
    bound)."""
    print(
        f"{case.name}  ({case.n_states} states, {case.n_actions} actions, H {case.horizon}, "
        f"gamma {case.discount}; expert's true return {optimum:.4f}{note})"
    )
    ours = statistics.median(outcomes["crucible"].seconds)
    returns = {}
    for name, o in outcomes.items():
        median = statistics.median(o.seconds)
        returns[name] = true_return(case, o.reward, case.start)
        status = "reached" if o.reached else "NOT reached"
        print(
            f"  {name:<10} median {median * 1e3:9.1f} ms  [{min(o.seconds) * 1e3:8.1f} .. "
            f"{max(o.seconds) * 1e3:8.1f}]  {o.iterations:5d} it. ({o.evaluations:5d} passes, "
            f"{median / max(o.evaluations, 1) * 1e3:5.2f} ms each)  gap {o.gap:.1e} "
            f"{status:<11}  true return {returns[name]:8.4f}  crucible is x{median / ours:6.1f} "
            "faster",
            flush=True,
        )
    if "imitation" not in outcomes:
        return None
    speedup = statistics.median(outcomes["imitation"].seconds) / ours
    same = abs(returns["crucible"] - returns["imitation"]) <= SAME_QUALITY * max(abs(optimum), 1.0)
    lower = not outcomes["imitation"].reached  # its time to the tolerance is longer still
    print(
        f"  -> {'same quality' if same else 'DIFFERENT quality'} (true returns "
        f"{returns['crucible']:.4f} vs {returns['imitation']:.4f}); crucible "
        f"{'reached' if outcomes['crucible'].reached else 'did NOT reach'} the tolerance, "
        f"imitation {'did NOT reach it within its budget' if lower else 'reached it'}; crucible "
        f"{'at least ' if lower else ''}x{speedup:.1f} faster",
        flush=True,
    )
    return speedup, same and outcomes["crucible"].reached, lower


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.maxent_irl")
    parser.add_argument("--quick", action="store_true", help="one round, no CliffWorld")
    parser.add_argument(
        "--demos",
        type=int,
        default=0,
        help="fit the visits of this many sampled demonstrations instead of the exact ones",
    )
    parser.add_argument(
        "--natural-expert", action="store_true", help="the expert's last move is reward-aware"
    )
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args(argv or [])
    repeats = 1 if args.quick else args.repeats
    torch.set_num_threads(1)
    missing = imitation_available()
    with threadpool_limits(limits=1), tempfile.TemporaryDirectory() as folder:
        blas = ", ".join(f"{i['internal_api']} {i['num_threads']}" for i in threadpool_info())
        print(f"threads: torch {torch.get_num_threads()}, BLAS/OpenMP: {blas}")
        expert = (
            "optimal for all H + 1 states" if args.natural_expert else "optimal, last move uniform"
        )
        source = (
            f"{args.demos} sampled demonstrations (seed {DEMO_SEED})"
            if args.demos
            else "the exact expected visits (no sampling)"
        )
        print(
            f"expert: {expert}; target: {source}; tolerance linf {TOLERANCE:g}; budgets: "
            f"crucible {OURS_BUDGET} L-BFGS it., imitation {THEIR_BUDGET} Adam it.; "
            f"{repeats} interleaved round(s)"
        )
        logger = None
        if missing is None:
            from imitation.util import logger as imitation_logger

            logger = imitation_logger.configure(folder=folder, format_strs=[])
        else:
            print(f"imitation: skipped ({missing}): install it with `{INSTALL}`")
        results = []
        for case in cases()[: 3 if args.quick else None]:
            if isinstance(case, str):
                print(f"seals CliffWorld: skipped ({case})")
                continue
            policies = expert_policies(case, args.natural_expert)
            if args.demos:
                target = sampled_target(case, policies, args.demos)
            else:
                target = exact_target(case, policies)
            floors = [
                occupancy_floor(case, target.visits, target.start, uniform)
                for uniform in (False, True)
            ]
            note = (
                f"; smallest gap any policy can reach: {floors[0]:.1e}, with imitation's "
                f"uniform last move: {floors[1]:.1e}"
            )
            sides = {"crucible": crucible(case, target)}
            if missing is None:
                sides["imitation"] = imitation(case, target, logger)
            optimum = true_return(case, case.r, case.start)
            result = show(case, timed(sides, repeats), optimum, note)
            if result is not None:
                results.append((case.name, *result))
    if results:
        met = all(ok and speedup >= TARGET_SPEEDUP for _, speedup, ok, _ in results)
        print(
            f"target (crucible reaches the tolerance with the same quality, >= x{TARGET_SPEEDUP:g}"
            f" faster, on every problem): {'MET' if met else 'NOT met'}; "
            + ", ".join(
                f"{name} x{speedup:.1f}{'+' if lower else ''}"
                for name, speedup, _, lower in results
            )
            + " (+: imitation did not reach the tolerance, a lower bound)",
            flush=True,
        )


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
