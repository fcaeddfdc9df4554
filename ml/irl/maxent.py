"""The maximum-entropy model of demonstrations: soft values, the soft-optimal policy, its
occupancy, and the objective whose gradient MaxEnt IRL follows.

Ziebart, Maas, Bagnell & Dey 2008 ("Maximum Entropy Inverse Reinforcement Learning", AAAI)
model a demonstration's probability as growing exponentially with its reward; in the causal
form of Ziebart 2010 (PhD thesis, Chapters 9-10), which imitation's `mce_irl.py` implements,
the demonstrator acts by the soft-optimal policy of a reward r[s, a]:

    Q_k[s, a] = r[s, a] + gamma sum_s' P(s'|s, a) V_{k-1}[s'],   V_0 = 0
    V_k[s]    = log sum_a exp Q_k[s, a]                            (soft Bellman backup)
    pi_k[a|s] = exp(Q_k[s, a] - V_k[s])

where k counts the decisions left (finite horizon), or without the index (infinite
horizon, gamma < 1: the fixed point, a gamma-contraction like value iteration's). Fitting r
to demonstrations maximises

    J(r) = mean_i [ sum_t gamma^t r(s_it, a_it) - V_{L_i}(s_i0) ]

(the causal log-likelihood when gamma = 1), which is concave in r, with gradient

    dJ/dr[s, a] = mu_E[s, a] - rho[s, a]

the expert's discounted state-action counts minus the soft policy's expected ones (Eq. 6 of
Ziebart et al. 2008, per state-action). A state reward r(s) gets the sum over actions; a
linear reward r = F theta gets F^T of it; a network, back-propagation of it.

Demonstrations may differ in length. Episode i of L_i steps starts with L_i decisions left,
so one backward pass to the longest length serves them all, and one forward pass injects
each episode's start at its own k: rho is then exactly the sum of every episode's expected
counts, and J is exact; no episode is cut or padded.

P is the sparse (S * A, S) matrix of `ml.tabular.mdp`, so a backward step costs one sparse
product over the non-zeros; terminal states are absorbing here, as inverse RL needs (a
demonstration that reached the goal stays there).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from ml.core.training import Interrupt, never

# Policies pi_k[s, a] are kept from the backward pass for the forward one while they fit in
# this many floats (256 MB); beyond, the forward pass recomputes them from V.
KEEP_POLICIES = 1 << 25
# Infinite horizon: soft value iteration stops when the bound on |V - V*| is below this
# (relative to max |V|, at least 1), and the occupancy sum when the mass left,
# gamma^t / (1 - gamma), is.
SOFT_TOLERANCE = 1e-9
MAX_SOFT_SWEEPS = 200_000


@dataclass(frozen=True)
class Demonstrations:
    """Demonstrated episodes as flat arrays (the `trajectories` dataset's layout): row i is
    (states[i], actions[i]); the first lengths[0] rows are episode 0, and so on."""

    states: np.ndarray  # s[N]
    actions: np.ndarray  # a[N]
    lengths: np.ndarray  # L[E], positive, summing to N

    @property
    def n_episodes(self) -> int:
        return len(self.lengths)

    @property
    def first_rows(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]])  # first[E]

    @property
    def step_index(self) -> np.ndarray:
        """t[N]: the step of each row within its episode."""
        return np.arange(len(self.states)) - np.repeat(self.first_rows, self.lengths)

    @property
    def decisions_left(self) -> np.ndarray:
        """k[N]: decisions left in the episode at each row, its own included."""
        return np.repeat(self.lengths, self.lengths) - self.step_index

    @functools.cached_property
    def rows_by_decisions_left(self) -> tuple[np.ndarray, np.ndarray]:
        """(order[N], first[K + 2]): the rows with k decisions left are
        order[first[k]:first[k + 1]], for one pass over the rows per forward pass."""
        k = self.decisions_left
        order = np.argsort(k, kind="stable")
        first = np.concatenate([[0], np.cumsum(np.bincount(k, minlength=int(k.max()) + 2))])
        return order, first

    def counts(self, n_states: int, n_actions: int, discount: float) -> np.ndarray:
        """mu_E[s, a] = mean_i sum_t gamma^t [s_it = s, a_it = a]."""
        weights = discount ** self.step_index.astype(np.float64)  # w[N]
        flat = np.bincount(
            self.states * n_actions + self.actions, weights, minlength=n_states * n_actions
        )
        return flat.reshape(n_states, n_actions) / self.n_episodes

    def injections(self, n_states: int) -> sparse.csr_array:
        """inject[k, s] = (1 / E) #{episodes of k decisions starting in s}, k = 0..max L;
        sparse: a dense one of 1,000 steps by 10^5 states would take 800 MB."""
        starts = self.states[self.first_rows]  # s_i0[E]
        weights = np.full(self.n_episodes, 1.0 / self.n_episodes)
        shape = (int(self.lengths.max()) + 1, n_states)
        return sparse.csr_array((weights, (self.lengths, starts)), shape=shape)

    def start_distribution(self, n_states: int) -> np.ndarray:
        """p0[s]: where the episodes start."""
        starts = self.states[self.first_rows]
        return np.bincount(starts, minlength=n_states) / self.n_episodes


@dataclass
class Dynamics:
    """P[(s, a), s'] and its transpose, for the backward and forward passes."""

    P: sparse.csr_array
    PT: sparse.csr_array = field(init=False)
    n_states: int = field(init=False)
    n_actions: int = field(init=False)

    def __post_init__(self) -> None:
        self.P = sparse.csr_array(self.P)
        self.PT = sparse.csr_array(self.P.T)
        self.n_states = int(self.P.shape[1])
        self.n_actions = int(self.P.shape[0]) // self.n_states

    def expected(self, V: np.ndarray) -> np.ndarray:
        """E[V(s') | s, a] as [S, A]."""
        return (self.P @ V).reshape(self.n_states, self.n_actions)

    def successors(self, flow: np.ndarray) -> np.ndarray:
        """sum_{s, a} flow[s, a] P(s'|s, a) as [S']."""
        return self.PT @ flow.reshape(-1)


def _logsumexp(Q: np.ndarray) -> np.ndarray:
    top = Q.max(axis=1)  # top[s]
    return top + np.log(np.exp(Q - top[:, None]).sum(axis=1))


@dataclass(frozen=True)
class SoftSolution:
    """The soft-optimal model of a reward and what fitting needs from it."""

    objective: float  # J(r), without any prior on the reward's parameters
    occupancy: np.ndarray  # rho[s, a], the soft policy's expected discounted counts
    policy: np.ndarray  # pi[s, a]: stationary, or (finite horizon) that of the most decisions left
    # log pi(a_i | s_i) of every demonstrated step, under the policy it was taken by
    log_likelihoods: np.ndarray  # ll[N]


def finite_horizon(
    dynamics: Dynamics,
    reward: np.ndarray,
    inject: np.ndarray | sparse.csr_array,
    discount: float,
    mu_expert: np.ndarray,
    demos: Demonstrations | None = None,
    interrupt: Interrupt = never,
) -> SoftSolution:
    """The backward and forward passes (the module docstring) for episodes that start as
    `inject[k, s]` says (`Demonstrations.injections`: the fraction of episodes that start in
    s with k decisions left); `reward` is r[s, a] or r[s, 1]. The log-likelihoods are of
    `demos`' steps (none without). `interrupt` may stop between two steps."""
    S, A = dynamics.n_states, dynamics.n_actions
    inject = sparse.csr_array(inject)  # inject[k, s]
    horizon = inject.shape[0] - 1
    keep = horizon * S * A <= KEEP_POLICIES
    V = np.zeros((horizon + 1, S))  # V[k, s], k decisions left
    policies: list[np.ndarray] = [np.empty((0, 0))] * (horizon + 1)  # pi_k[s, a]

    def policy(k: int) -> np.ndarray:
        if keep and policies[k].size:
            return policies[k]
        Q = reward + discount * dynamics.expected(V[k - 1])  # Q_k[s, a]
        return np.exp(Q - V[k][:, None])

    for k in range(1, horizon + 1):
        interrupt()
        Q = reward + discount * dynamics.expected(V[k - 1])  # Q_k[s, a]
        V[k] = _logsumexp(Q)
        if keep:
            policies[k] = np.exp(Q - V[k][:, None])
    occupancy = np.zeros((S, A))  # rho[s, a]
    mass = np.zeros(S)  # m[s]: discounted probability of being in s with k decisions left
    log_likelihoods = np.empty(0 if demos is None else len(demos.states))  # ll[N]
    for k in range(horizon, 0, -1):
        interrupt()
        pi = policy(k)  # pi_k[s, a]
        if demos is not None:
            order, first = demos.rows_by_decisions_left
            rows = order[first[k] : first[k + 1]]
            chosen = pi[demos.states[rows], demos.actions[rows]]
            log_likelihoods[rows] = np.log(np.maximum(chosen, 1e-300))
        begin, end = inject.indptr[k], inject.indptr[k + 1]
        np.add.at(mass, inject.indices[begin:end], inject.data[begin:end])
        flow = mass[:, None] * pi  # flow[s, a]
        occupancy += flow
        mass = discount * dynamics.successors(flow)
    starts = inject.tocoo()
    value = float(starts.data @ V[starts.row, starts.col])  # mean_i V_{L_i}(s_i0)
    objective = float((mu_expert * np.broadcast_to(reward, (S, A))).sum()) - value
    return SoftSolution(objective, occupancy, policy(horizon), log_likelihoods)


def soft_values(
    dynamics: Dynamics,
    reward: np.ndarray,
    discount: float,
    V0: np.ndarray | None = None,
    interrupt: Interrupt = never,
) -> tuple[np.ndarray, np.ndarray]:
    """Infinite horizon: the soft Bellman fixed point V[s] and pi[s, a], from V0 (a warm
    start: the previous gradient's values are close). The backup is a gamma-contraction, so
    gamma / (1 - gamma) max|V_k+1 - V_k| bounds the distance to the fixed point."""
    if not 0.0 <= discount < 1.0:
        raise ValueError("an infinite horizon needs discount < 1")
    V = np.zeros(dynamics.n_states) if V0 is None else V0.copy()  # V[s]
    for _ in range(MAX_SOFT_SWEEPS):
        interrupt()
        Q = reward + discount * dynamics.expected(V)  # Q[s, a]
        new = _logsumexp(Q)
        change = float(np.abs(new - V).max())
        V = new
        # Relative to the values' size: an absolute 1e-9 at discount 0.999 would ask for
        # changes below what doubles can hold for values in the hundreds.
        scale = max(1.0, float(np.abs(V).max()))
        if change * discount / max(1.0 - discount, 1e-12) < SOFT_TOLERANCE * scale:
            break
    Q = reward + discount * dynamics.expected(V)
    return V, np.exp(Q - V[:, None])


def infinite_horizon(
    dynamics: Dynamics,
    reward: np.ndarray,
    start: np.ndarray,
    discount: float,
    mu_expert: np.ndarray,
    demos: Demonstrations | None = None,
    V0: np.ndarray | None = None,
    interrupt: Interrupt = never,
) -> tuple[SoftSolution, np.ndarray]:
    """The stationary soft-optimal policy and its discounted occupancy from `start[s]` (the
    demonstrations' first states), summed until the mass left is negligible; also V[s], to
    warm-start the next call."""
    S, A = dynamics.n_states, dynamics.n_actions
    V, pi = soft_values(dynamics, reward, discount, V0, interrupt)
    occupancy = np.zeros((S, A))
    mass = start.copy()
    left = 1.0 / (1.0 - discount)  # a bound on the discounted mass still to come
    while left > SOFT_TOLERANCE and mass.any():
        interrupt()
        flow = mass[:, None] * pi
        occupancy += flow
        mass = discount * dynamics.successors(flow)
        left *= discount
    chosen = np.empty(0) if demos is None else pi[demos.states, demos.actions]
    log_likelihoods = np.log(np.maximum(chosen, 1e-300))
    objective = float((mu_expert * np.broadcast_to(reward, (S, A))).sum() - start @ V)
    return SoftSolution(objective, occupancy, pi, log_likelihoods), V
