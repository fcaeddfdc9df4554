"""Dynamic-programming kernels on tabular MDPs: pure functions, arrays in, arrays out.

Written in the style of imitation's `mce_irl.py`: a shape comment on every array
(`# Q[s, a]`), the equation each line implements cited from Sutton & Barto, "Reinforcement
Learning: An Introduction" (2nd ed., 2018) or Puterman, "Markov Decision Processes" (1994).
The maximum-entropy (soft) backups of inverse RL are `ml.irl.maxent`'s.

Conventions shared by every kernel:

- The dynamics `P` are either a dense array `P[s, a, s']` or a sparse `scipy.sparse` matrix
  of shape (S * A, S) whose row `s * A + a` is Pr(. | s, a). Grid worlds have a handful of
  successors per state-action, so the sparse form is what lets 10^6 states fit (12 million
  non-zeros instead of 4 * 10^12 entries). `R[s, a]` is the expected immediate reward.
- `terminal[s]` marks states whose value is 0 and which do not bootstrap: an episode ends on
  entering them (the reward for entering is in `R` of the state-action that led there).
- A deterministic policy is an int array `policy[s]`; a stochastic one is `pi[s, a]`.
- `discount` may be 1 only if every policy reaches a terminal state; otherwise the values of
  the never-ending policies are infinite and the linear solves below are singular.

How value iteration decides it is done matters more than how fast a sweep is (a sweep is
memory-bound and costs about the same in any library). Stopping when successive iterates
differ by less than epsilon says little about the distance to V*; here `tolerance` bounds
that distance, with discount gamma < 1:

- Jacobi sweeps (every state from the previous iterate) stop on the span seminorm with
  MacQueen's bounds (Puterman Section 6.6.3): with d = V_k+1 - V_k,
      V_k+1 + gamma/(1-gamma) min d  <=  V*  <=  V_k+1 + gamma/(1-gamma) max d,
  so the midpoint of the bounds is within gamma/(1-gamma) * span(d) / 2 of V*. The span
  contracts as fast as the chain mixes, often far faster than gamma: on a random 2,000-state
  MDP a handful of sweeps reach 1e-6 where the sup-norm rule needs over a thousand.
- Gauss-Seidel sweeps (each state uses the values already updated in this sweep; Puterman
  Section 6.3.3) visit states outward from the terminal ones, in breadth-first order of the
  reversed transition graph, as topological value iteration does (Dai et al. 2011,
  "Topological Value Iteration Algorithms", JAIR 42): a goal's value reaches the far end
  of a grid in one sweep instead of one cell per sweep. Starting below V* (every non-terminal
  value at min(0, min R) / (1 - gamma)) keeps the greedy choices from chasing
  not-yet-visited optimistic zeros. Each Gauss-Seidel sweep is still a gamma-contraction,
  so gamma/(1-gamma) max|d| bounds the error. The sweep is compiled with numba: a Python
  loop over 10^6 states would take a second per sweep, the compiled one about 10 ms.

With gamma = 1 no such bound exists; the runs stop when max|d| < tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numba
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from scipy.sparse import linalg as sparse_linalg

Sweeps = Literal["auto", "jacobi", "gauss_seidel"]
Dynamics: TypeAlias = np.ndarray | sparse.csr_array | sparse.csr_matrix

# Above this many states an exact policy evaluation (a sparse LU factorisation, whose fill-in
# grows faster than the state count) is replaced by Gauss-Seidel sweeps to a tight bound.
EXACT_SOLVE_STATES = 100_000


@dataclass(frozen=True)
class VIResult:
    """Outcome of value iteration or policy iteration."""

    V: np.ndarray  # V[s]
    Q: np.ndarray  # Q[s, a]
    policy: np.ndarray  # policy[s], greedy with respect to Q
    iterations: int  # sweeps (value iteration) or improvement steps (policy iteration)
    delta: float  # the stopping measure of the last sweep (0 for policy iteration)
    converged: bool
    # A bound on max_s |V(s) - V*(s)| when the discount allows one (inf with discount 1;
    # 0 for policy iteration, whose evaluation is exact).
    error_bound: float = float("inf")


def sizes(P: Dynamics) -> tuple[int, int]:
    """(states, actions) of dense P[s, a, s'] or sparse P[(s, a), s']."""
    if isinstance(P, np.ndarray):
        return int(P.shape[0]), int(P.shape[1])
    n_states = int(P.shape[1])
    return n_states, int(P.shape[0]) // n_states


def as_sparse(P: Dynamics) -> sparse.csr_array:
    """The (S * A, S) CSR form of either representation."""
    if isinstance(P, np.ndarray):
        n_states, n_actions = sizes(P)
        return sparse.csr_array(P.reshape(n_states * n_actions, n_states))
    return sparse.csr_array(P)


def expected_next(P: Dynamics, V: np.ndarray) -> np.ndarray:
    """E[V(s') | s, a] as [S, A]: one matrix-vector product over the flattened (s, a) rows
    (BLAS gemv for dense P, several times faster than numpy's batched 3-D @ 1-D)."""
    n_states, n_actions = sizes(P)
    flat = P.reshape(n_states * n_actions, -1) if isinstance(P, np.ndarray) else P
    return np.asarray(flat @ V).reshape(n_states, n_actions)


def _no_terminal(n_states: int, terminal: np.ndarray | None) -> np.ndarray:
    return np.zeros(n_states, dtype=bool) if terminal is None else np.asarray(terminal, bool)


def bellman_optimality_backup(
    P: Dynamics, R: np.ndarray, V: np.ndarray, discount: float, terminal: np.ndarray | None
) -> np.ndarray:
    """One application of the Bellman optimality operator, as action values.

    Q(s, a) = R(s, a) + gamma * sum_s' P(s' | s, a) V(s')          (Sutton & Barto Eq. 4.6)
    with Q(s, .) = 0 for terminal s.
    """
    Q = R + discount * expected_next(P, V)  # Q[s, a]
    if terminal is not None:
        Q[terminal] = 0.0
    return Q


def greedy(Q: np.ndarray) -> np.ndarray:
    """policy[s] = argmax_a Q[s, a] (the first maximiser on ties, so it is deterministic)."""
    return np.argmax(Q, axis=1)


def error_bound(discount: float, change: float) -> float:
    """gamma / (1 - gamma) * change: how far from V* an iterate whose last sweep moved by
    `change` (sup norm, or half the span after MacQueen's correction) can still be."""
    return discount / (1.0 - discount) * change if discount < 1.0 else float("inf")


def choose_sweeps(P: Dynamics, terminal: np.ndarray, sweeps: Sweeps) -> Sweeps:
    """'auto': Gauss-Seidel in topological order where there is an order to follow (sparse
    dynamics with terminal states, i.e. grids and episodic tasks), Jacobi with MacQueen's
    bounds otherwise (dense, fast-mixing MDPs, where BLAS does a sweep best)."""
    if sweeps != "auto":
        return sweeps
    return "gauss_seidel" if not isinstance(P, np.ndarray) and terminal.any() else "jacobi"


def value_iteration(
    P: Dynamics,
    R: np.ndarray,
    discount: float,
    *,
    terminal: np.ndarray | None = None,
    tolerance: float = 1e-8,
    max_iterations: int = 10_000,
    V0: np.ndarray | None = None,
    start_iteration: int = 0,
    callback: Callable[[int, np.ndarray, float], None] | None = None,
    sweeps: Sweeps = "auto",
) -> VIResult:
    """Iterate V_{k+1}(s) = max_a Q_k(s, a) (Sutton & Barto Eq. 4.10) until V is within
    `tolerance` of V* (see the module docstring for the bounds; with gamma = 1, until a
    sweep changes no value by more than `tolerance`).

    `V0` and `start_iteration` resume an interrupted run; `callback(iteration, V, measure)`
    is called after every sweep with the quantity compared to `tolerance`, and may raise to
    stop it.
    """
    n_states, _ = sizes(P)
    terminal = _no_terminal(n_states, terminal)
    method = choose_sweeps(P, terminal, sweeps)
    if method == "gauss_seidel":
        return _gauss_seidel_vi(
            as_sparse(P),
            R,
            discount,
            terminal,
            tolerance,
            max_iterations,
            V0,
            start_iteration,
            callback,
        )
    V = np.zeros(n_states) if V0 is None else np.array(V0, dtype=np.float64)  # V[s]
    V[terminal] = 0.0
    measure, iteration, converged, shift = np.inf, start_iteration, False, 0.0
    while iteration < max_iterations:
        V_new = bellman_optimality_backup(P, R, V, discount, terminal).max(axis=1)  # V[s]
        d = V_new - V  # d[s]
        V = V_new
        if discount < 1.0:
            # MacQueen's bounds; terminal states (d = 0) keep 0 inside them, which keeps them
            # valid for the sub-stochastic rows that a value pinned at 0 amounts to.
            low, high = float(d.min()), float(d.max())
            shift = discount / (1.0 - discount) * (low + high) / 2.0
            measure = error_bound(discount, (high - low) / 2.0)
        else:
            measure = float(np.max(np.abs(d)))
        iteration += 1
        if callback is not None:
            callback(iteration, V, measure)
        if measure < tolerance:
            converged = True
            break
    # The midpoint of the bounds, only at the end: the iterates themselves stay T^k V0, so a
    # resumed run (which restarts from the last V the callback saw) follows the same path.
    V = V + shift
    V[terminal] = 0.0
    return _result(P, R, V, discount, terminal, iteration, measure, converged)


def _result(
    P: Dynamics,
    R: np.ndarray,
    V: np.ndarray,
    discount: float,
    terminal: np.ndarray,
    iterations: int,
    measure: float,
    converged: bool,
) -> VIResult:
    """The end of value iteration: Q of the final V, its greedy policy, and the error bound
    (the last sweep's measure, when the discount gives one)."""
    Q = bellman_optimality_backup(P, R, V, discount, terminal)
    return VIResult(
        V=V,
        Q=Q,
        policy=greedy(Q),
        iterations=iterations,
        delta=measure,
        converged=converged,
        error_bound=measure if discount < 1.0 else float("inf"),
    )


def topological_order(P: sparse.csr_array, terminal: np.ndarray) -> np.ndarray:
    """Non-terminal states in breadth-first order of their distance to a terminal state
    (along reversed transitions), then those that reach none; order[i] is a state."""
    n_states, n_actions = sizes(P)
    targets = np.flatnonzero(terminal)
    sources = np.repeat(np.arange(P.shape[0]) // n_actions, np.diff(P.indptr))  # s of nnz
    # Reversed graph s' -> s, plus a root (node n_states) pointing at every terminal state.
    rows = np.concatenate([P.indices, np.full(len(targets), n_states)])
    cols = np.concatenate([sources, targets])
    graph = sparse.csr_array(
        (np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n_states + 1, n_states + 1)
    )
    reached = csgraph.breadth_first_order(graph, n_states, directed=True, return_predecessors=False)
    seen = np.zeros(n_states + 1, dtype=bool)
    seen[reached] = True
    order = np.concatenate([reached[1:], np.flatnonzero(~seen[:n_states])])
    return order[~terminal[order]].astype(np.int64)


@numba.njit(cache=True)  # type: ignore[misc]
def _gauss_seidel_sweep(indptr, indices, data, R, V, order, discount):  # type: ignore[no-untyped-def]
    """One in-place sweep of V(s) <- max_a R(s, a) + gamma sum_s' P(s'|s, a) V(s') over
    `order`; returns max |change|."""
    n_actions = R.shape[1]
    largest = 0.0
    for s in order:
        best = -np.inf
        for a in range(n_actions):
            row = s * n_actions + a
            total = 0.0
            for k in range(indptr[row], indptr[row + 1]):
                total += data[k] * V[indices[k]]
            q = R[s, a] + discount * total
            best = max(best, q)
        largest = max(largest, abs(best - V[s]))
        V[s] = best
    return largest


@numba.njit(cache=True)  # type: ignore[misc]
def _gauss_seidel_policy_sweep(indptr, indices, data, R, pi, V, order, discount):  # type: ignore[no-untyped-def]
    """One in-place sweep of V(s) <- sum_a pi(a|s) [R(s, a) + gamma E V(s')] (S&B Eq. 4.5,
    the in-place variant of Section 4.1); returns max |change|."""
    n_actions = R.shape[1]
    largest = 0.0
    for s in order:
        value = 0.0
        for a in range(n_actions):
            if pi[s, a] == 0.0:
                continue
            row = s * n_actions + a
            total = 0.0
            for k in range(indptr[row], indptr[row + 1]):
                total += data[k] * V[indices[k]]
            value += pi[s, a] * (R[s, a] + discount * total)
        largest = max(largest, abs(value - V[s]))
        V[s] = value
    return largest


@dataclass(frozen=True)
class _Ordered:
    """P, R and V renumbered so that the sweep order is 0, 1, 2, ...: a sweep then reads
    memory in order, which makes it several times faster than visiting states in
    breadth-first order through the original numbering."""

    perm: np.ndarray  # perm[i]: the state renumbered i (the swept ones first, then the rest)
    swept: np.ndarray  # 0 .. number of non-terminal states - 1
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    R: np.ndarray  # R[i, a] of renumbered states

    @classmethod
    def of(cls, P: sparse.csr_array, R: np.ndarray, terminal: np.ndarray) -> _Ordered:
        n_states, n_actions = sizes(P)
        order = topological_order(P, terminal)
        perm = np.concatenate([order, np.flatnonzero(terminal)])
        position = np.empty(n_states, dtype=np.int64)
        position[perm] = np.arange(n_states)
        rows = (perm[:, None] * n_actions + np.arange(n_actions)).reshape(-1)
        Pp = sparse.csr_array(P[rows])  # rows in sweep order; columns renumbered below
        return cls(
            perm=perm,
            swept=np.arange(len(order), dtype=np.int64),
            indptr=Pp.indptr.astype(np.int64),
            indices=position[Pp.indices],
            data=Pp.data.astype(np.float64),
            R=np.ascontiguousarray(R[perm], dtype=np.float64),
        )

    def inward(self, V: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(V[self.perm])

    def outward(self, Vp: np.ndarray) -> np.ndarray:
        V = np.empty_like(Vp)
        V[self.perm] = Vp
        return V


def _gauss_seidel_vi(
    P: sparse.csr_array,
    R: np.ndarray,
    discount: float,
    terminal: np.ndarray,
    tolerance: float,
    max_iterations: int,
    V0: np.ndarray | None,
    start_iteration: int,
    callback: Callable[[int, np.ndarray, float], None] | None,
) -> VIResult:
    n_states, _ = sizes(P)
    R = np.ascontiguousarray(R, dtype=np.float64)  # R[s, a]
    if V0 is not None:
        V = np.array(V0, dtype=np.float64)  # V[s]
    elif discount < 1.0:  # a lower bound on V*: convergence from below (module docstring)
        V = np.full(n_states, min(0.0, float(R.min())) / (1.0 - discount))
    else:
        V = np.zeros(n_states)
    V[terminal] = 0.0
    ordered = _Ordered.of(P, R, terminal)
    Vp = ordered.inward(V)  # V in sweep order
    parts = (ordered.indptr, ordered.indices, ordered.data, ordered.R)
    measure, iteration, converged = np.inf, start_iteration, False
    while iteration < max_iterations:
        change = float(_gauss_seidel_sweep(*parts, Vp, ordered.swept, discount))
        measure = error_bound(discount, change) if discount < 1.0 else change
        iteration += 1
        if callback is not None:
            callback(iteration, ordered.outward(Vp), measure)
        if measure < tolerance:
            converged = True
            break
    V = ordered.outward(Vp)
    return _result(P, R, V, discount, terminal, iteration, measure, converged)


def policy_matrix(policy: np.ndarray, n_actions: int) -> np.ndarray:
    """pi[s, a] from either a deterministic policy[s] or a stochastic pi[s, a]."""
    policy = np.asarray(policy)
    if policy.ndim == 1:
        pi = np.zeros((len(policy), n_actions))
        pi[np.arange(len(policy)), policy] = 1.0
        return pi  # pi[s, a]
    return policy.astype(np.float64)


def policy_evaluation(
    P: Dynamics,
    R: np.ndarray,
    policy: np.ndarray,
    discount: float,
    *,
    terminal: np.ndarray | None = None,
    V0: np.ndarray | None = None,
    tolerance: float = 1e-10,
    max_iterations: int = 1_000_000,
    callback: Callable[[int, np.ndarray, float], None] | None = None,
    exact: bool | None = None,
) -> np.ndarray:
    """V^pi by solving the linear Bellman expectation equation.

    V = r_pi + gamma P_pi V, i.e. (I - gamma P_pi) V = r_pi           (Sutton & Barto Eq. 4.4)
    where terminal rows of P_pi and r_pi are zeroed so that V(terminal) = 0. Exact (LU) for
    dense P and, unless `exact` says otherwise, up to EXACT_SOLVE_STATES states; else
    in-place sweeps from `V0` until the error bound (or, with discount 1, the change of a
    sweep) is below `tolerance`, `callback(sweep, V, measure)` after each (it may raise to
    stop them). Raises ValueError when the sweeps run out first or the system is singular.
    """
    n_states, n_actions = sizes(P)
    terminal = _no_terminal(n_states, terminal)
    pi = policy_matrix(policy, n_actions)  # pi[s, a]
    r_pi = np.einsum("sa,sa->s", pi, R)  # r_pi[s]
    r_pi[terminal] = 0.0
    singular = (
        "policy evaluation is singular: with discount 1 some state never reaches a "
        "terminal state under this policy"
    )
    if isinstance(P, np.ndarray):
        P_pi = np.einsum("sa,sat->st", pi, P)  # P_pi[s, s']
        P_pi[terminal] = 0.0
        try:
            return np.linalg.solve(np.eye(n_states) - discount * P_pi, r_pi)
        except np.linalg.LinAlgError as exc:
            raise ValueError(singular) from exc
    P = as_sparse(P)
    if exact if exact is not None else n_states <= EXACT_SOLVE_STATES:
        # P_pi = Pi P with Pi[s, (s, a)] = pi(a|s): a sparse product, no dense S x S.
        rows = np.repeat(np.arange(n_states), n_actions)
        Pi = sparse.csr_array((pi.reshape(-1), (rows, np.arange(n_states * n_actions))))
        P_pi = sparse.csr_array(Pi @ P)  # P_pi[s, s']
        keep = sparse.diags_array((~terminal).astype(np.float64))
        A = sparse.identity(n_states, format="csc") - discount * (keep @ P_pi).tocsc()
        with np.errstate(all="ignore"):
            V = np.asarray(sparse_linalg.spsolve(A, r_pi), dtype=np.float64)
        if not np.all(np.isfinite(V)):
            raise ValueError(singular)
        return V
    V = np.zeros(n_states) if V0 is None else np.array(V0, dtype=np.float64)
    V[terminal] = 0.0
    ordered = _Ordered.of(P, R, terminal)
    Vp, pi_p = ordered.inward(V), np.ascontiguousarray(pi[ordered.perm])
    parts = (ordered.indptr, ordered.indices, ordered.data, ordered.R)
    for sweep in range(1, max_iterations + 1):
        change = float(_gauss_seidel_policy_sweep(*parts, pi_p, Vp, ordered.swept, discount))
        measure = error_bound(discount, change) if discount < 1.0 else change
        if callback is not None:
            callback(sweep, ordered.outward(Vp), measure)
        if measure < tolerance:
            return ordered.outward(Vp)
    raise ValueError(
        f"policy evaluation did not converge within {max_iterations} sweeps (with discount 1, "
        "some state may never reach a terminal state under this policy)"
    )


def iterative_policy_evaluation(
    P: Dynamics,
    R: np.ndarray,
    policy: np.ndarray,
    discount: float,
    *,
    terminal: np.ndarray | None = None,
    tolerance: float = 1e-10,
    max_iterations: int = 100_000,
) -> tuple[np.ndarray, int]:
    """V^pi by repeated expected updates, and the number of sweeps.

    V_{k+1}(s) = sum_a pi(a|s) [R(s, a) + gamma sum_s' P(s'|s, a) V_k(s')]   (S&B Eq. 4.5)
    """
    n_states, n_actions = sizes(P)
    terminal = _no_terminal(n_states, terminal)
    pi = policy_matrix(policy, n_actions)  # pi[s, a]
    V = np.zeros(n_states)  # V[s]
    for sweep in range(1, max_iterations + 1):
        Q = bellman_optimality_backup(P, R, V, discount, terminal)  # Q[s, a] under V_k
        V_new = np.einsum("sa,sa->s", pi, Q)  # V[s]
        delta = float(np.max(np.abs(V_new - V)))
        V = V_new
        if delta < tolerance:
            return V, sweep
    return V, max_iterations


def policy_iteration(
    P: Dynamics,
    R: np.ndarray,
    discount: float,
    *,
    terminal: np.ndarray | None = None,
    max_iterations: int = 1_000,
    policy0: np.ndarray | None = None,
    callback: Callable[[int, np.ndarray, np.ndarray, int], None] | None = None,
) -> VIResult:
    """Howard's policy iteration: evaluate exactly, improve greedily, until stable.

    (Sutton & Barto Section 4.3.) To avoid flip-flopping between equally good actions, the
    current action is kept unless another is better by more than a small margin.
    `callback(iteration, V, policy, changed)` is called after every improvement step with the
    values of the policy evaluated, the improved policy and the number of states whose
    action changed; it may raise to stop it.
    """
    n_states, _ = sizes(P)
    terminal = _no_terminal(n_states, terminal)
    policy = np.zeros(n_states, dtype=np.int64) if policy0 is None else np.array(policy0)
    V = policy_evaluation(P, R, policy, discount, terminal=terminal)
    for iteration in range(1, max_iterations + 1):
        Q = bellman_optimality_backup(P, R, V, discount, terminal)  # Q[s, a]
        best = greedy(Q)  # policy[s]
        current = Q[np.arange(n_states), policy]  # Q[s, policy(s)]
        margin = 1e-12 * np.maximum(1.0, np.abs(current))
        improved = Q[np.arange(n_states), best] > current + margin  # improved[s]
        improved &= ~terminal
        new_policy = np.where(improved, best, policy)
        if callback is not None:
            callback(iteration, V, new_policy, int(improved.sum()))
        if not improved.any():
            return VIResult(
                V=V,
                Q=Q,
                policy=policy,
                iterations=iteration,
                delta=0.0,
                converged=True,
                error_bound=0.0,
            )
        policy = new_policy
        V = policy_evaluation(P, R, policy, discount, terminal=terminal, V0=V)
    Q = bellman_optimality_backup(P, R, V, discount, terminal)
    return VIResult(V=V, Q=Q, policy=policy, iterations=max_iterations, delta=0.0, converged=False)
