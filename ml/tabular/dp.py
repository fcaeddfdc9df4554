"""Dynamic-programming kernels on tabular MDPs: pure, vectorized NumPy functions.

Written in the style of imitation's `mce_irl.py`: arrays in, arrays out, a shape comment on
every array (`# Q[s, a]`), the equation each line implements cited from Sutton & Barto,
"Reinforcement Learning: An Introduction" (2nd ed., 2018), or from Ziebart et al.

Conventions shared by every kernel:

- `P[s, a, s']` transition probabilities, `R[s, a]` expected immediate reward.
- `terminal[s]` marks states whose value is 0 and which do not bootstrap: an episode ends on
  entering them (the reward for entering is in `R` of the state-action that led there).
- A deterministic policy is an int array `policy[s]`; a stochastic one is `pi[s, a]`.
- `discount` may be 1 only if every policy reaches a terminal state; otherwise the values of
  the never-ending policies are infinite and the linear solves below are singular.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VIResult:
    """Outcome of value iteration or policy iteration."""

    V: np.ndarray  # V[s]
    Q: np.ndarray  # Q[s, a]
    policy: np.ndarray  # policy[s], greedy with respect to Q
    iterations: int  # sweeps (value iteration) or improvement steps (policy iteration)
    delta: float  # max |V_k - V_{k-1}| of the last sweep (0 for policy iteration)
    converged: bool


def _no_terminal(P: np.ndarray, terminal: np.ndarray | None) -> np.ndarray:
    return np.zeros(P.shape[0], dtype=bool) if terminal is None else np.asarray(terminal, bool)


def bellman_optimality_backup(
    P: np.ndarray, R: np.ndarray, V: np.ndarray, discount: float, terminal: np.ndarray | None
) -> np.ndarray:
    """One application of the Bellman optimality operator, as action values.

    Q(s, a) = R(s, a) + gamma * sum_s' P(s' | s, a) V(s')          (Sutton & Barto Eq. 4.6)
    with Q(s, .) = 0 for terminal s.
    """
    n_states, n_actions, _ = P.shape
    # E[V(s') | s, a] as one matrix-vector product over the flattened [s*a, s'] view: BLAS
    # gemv, several times faster than numpy's batched 3-D @ 1-D.
    expected = (P.reshape(n_states * n_actions, -1) @ V).reshape(n_states, n_actions)
    Q = R + discount * expected  # Q[s, a]
    if terminal is not None:
        Q[terminal] = 0.0
    return Q


def greedy(Q: np.ndarray) -> np.ndarray:
    """policy[s] = argmax_a Q[s, a] (the first maximiser on ties, so it is deterministic)."""
    return np.argmax(Q, axis=1)


def value_iteration(
    P: np.ndarray,
    R: np.ndarray,
    discount: float,
    *,
    terminal: np.ndarray | None = None,
    tolerance: float = 1e-8,
    max_iterations: int = 10_000,
    V0: np.ndarray | None = None,
    start_iteration: int = 0,
    callback: Callable[[int, np.ndarray, float], None] | None = None,
) -> VIResult:
    """Iterate V_{k+1}(s) = max_a Q_k(s, a) until max_s |V_{k+1} - V_k| < tolerance.

    (Sutton & Barto Section 4.4, Eq. 4.10.) `V0` and `start_iteration` resume an interrupted
    run; `callback(iteration, V, delta)` is called after every sweep and may raise to stop it.
    """
    terminal = _no_terminal(P, terminal)
    V = np.zeros(P.shape[0]) if V0 is None else np.array(V0, dtype=np.float64)  # V[s]
    V[terminal] = 0.0
    delta, iteration, converged = np.inf, start_iteration, False
    while iteration < max_iterations:
        Q = bellman_optimality_backup(P, R, V, discount, terminal)  # Q[s, a]
        V_new = Q.max(axis=1)  # V[s]
        delta = float(np.max(np.abs(V_new - V)))
        V = V_new
        iteration += 1
        if callback is not None:
            callback(iteration, V, delta)
        if delta < tolerance:
            converged = True
            break
    Q = bellman_optimality_backup(P, R, V, discount, terminal)
    return VIResult(
        V=V, Q=Q, policy=greedy(Q), iterations=iteration, delta=delta, converged=converged
    )


def _policy_matrix(policy: np.ndarray, n_actions: int) -> np.ndarray:
    """pi[s, a] from either a deterministic policy[s] or a stochastic pi[s, a]."""
    policy = np.asarray(policy)
    if policy.ndim == 1:
        return np.eye(n_actions)[policy]  # pi[s, a]
    return policy.astype(np.float64)


def policy_evaluation(
    P: np.ndarray,
    R: np.ndarray,
    policy: np.ndarray,
    discount: float,
    *,
    terminal: np.ndarray | None = None,
) -> np.ndarray:
    """Exact V^pi by solving the linear Bellman expectation equation.

    V = r_pi + gamma P_pi V, i.e. (I - gamma P_pi) V = r_pi           (Sutton & Barto Eq. 4.4)
    where terminal rows of P_pi and r_pi are zeroed so that V(terminal) = 0.
    """
    terminal = _no_terminal(P, terminal)
    pi = _policy_matrix(policy, P.shape[1])  # pi[s, a]
    P_pi = np.einsum("sa,sat->st", pi, P)  # P_pi[s, s']
    r_pi = np.einsum("sa,sa->s", pi, R)  # r_pi[s]
    P_pi[terminal] = 0.0
    r_pi[terminal] = 0.0
    A = np.eye(P.shape[0]) - discount * P_pi  # A[s, s']
    try:
        return np.linalg.solve(A, r_pi)
    except np.linalg.LinAlgError as exc:
        raise ValueError(
            "policy evaluation is singular: with discount 1 some state never reaches a "
            "terminal state under this policy"
        ) from exc


def iterative_policy_evaluation(
    P: np.ndarray,
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
    terminal = _no_terminal(P, terminal)
    pi = _policy_matrix(policy, P.shape[1])  # pi[s, a]
    V = np.zeros(P.shape[0])  # V[s]
    for sweep in range(1, max_iterations + 1):
        Q = bellman_optimality_backup(P, R, V, discount, terminal)  # Q[s, a] under V_k
        V_new = np.einsum("sa,sa->s", pi, Q)  # V[s]
        delta = float(np.max(np.abs(V_new - V)))
        V = V_new
        if delta < tolerance:
            return V, sweep
    return V, max_iterations


def policy_iteration(
    P: np.ndarray,
    R: np.ndarray,
    discount: float,
    *,
    terminal: np.ndarray | None = None,
    max_iterations: int = 1_000,
    policy0: np.ndarray | None = None,
) -> VIResult:
    """Howard's policy iteration: evaluate exactly, improve greedily, until stable.

    (Sutton & Barto Section 4.3.) To avoid flip-flopping between equally good actions, the
    current action is kept unless another is better by more than a small margin.
    """
    terminal = _no_terminal(P, terminal)
    n_states = P.shape[0]
    policy = np.zeros(n_states, dtype=np.int64) if policy0 is None else np.array(policy0)
    V = policy_evaluation(P, R, policy, discount, terminal=terminal)
    for iteration in range(1, max_iterations + 1):
        Q = bellman_optimality_backup(P, R, V, discount, terminal)  # Q[s, a]
        best = greedy(Q)  # policy[s]
        current = Q[np.arange(n_states), policy]  # Q[s, policy(s)]
        margin = 1e-12 * np.maximum(1.0, np.abs(current))
        improved = Q[np.arange(n_states), best] > current + margin  # improved[s]
        if not improved.any():
            return VIResult(
                V=V, Q=Q, policy=policy, iterations=iteration, delta=0.0, converged=True
            )
        policy = np.where(improved, best, policy)
        V = policy_evaluation(P, R, policy, discount, terminal=terminal)
    Q = bellman_optimality_backup(P, R, V, discount, terminal)
    return VIResult(V=V, Q=Q, policy=policy, iterations=max_iterations, delta=0.0, converged=False)


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(x - top), axis=axis))


def soft_value_iteration(
    P: np.ndarray, state_reward: np.ndarray, horizon: int, discount: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finite-horizon soft (maximum-entropy) value iteration for a state reward r(s).

    The backward pass of Ziebart et al. 2008 (Algorithm 1) in its log-space form, as in
    Ziebart 2010 / imitation's `mce_partition_fh`:

        V[T-1, s] = r(s)
        Q[t, s, a] = r(s) + gamma sum_s' P(s'|s, a) V[t+1, s']
        V[t, s]    = log sum_a exp Q[t, s, a]                          (soft Bellman backup)
        pi[t, s, a] = exp(Q[t, s, a] - V[t, s])                        (max-ent policy)

    A trajectory of `horizon` states takes `horizon - 1` actions, so pi has horizon - 1 steps.
    Every state bootstraps: inverse RL makes terminal states absorbing instead.
    Returns V[t, s] (horizon steps), Q[t, s, a] and pi[t, s, a] (horizon - 1 steps).
    """
    n_states, n_actions = P.shape[0], P.shape[1]
    V = np.zeros((horizon, n_states))  # V[t, s]
    Q = np.zeros((max(horizon - 1, 0), n_states, n_actions))  # Q[t, s, a]
    V[horizon - 1] = state_reward
    for t in reversed(range(horizon - 1)):
        Q[t] = state_reward[:, None] + discount * (P @ V[t + 1])
        V[t] = _logsumexp(Q[t], axis=1)
    pi = np.exp(Q - V[: horizon - 1, :, None])  # pi[t, s, a]
    return V, Q, pi


def state_visitation(P: np.ndarray, pi: np.ndarray, start: np.ndarray, horizon: int) -> np.ndarray:
    """Expected state visitation frequencies D[t, s] = Pr(s_t = s) for t < horizon.

    The forward pass of Ziebart et al. 2008 (Algorithm 1, steps 4-5):
        D[0, s] = p0(s);   D[t+1, s'] = sum_{s, a} D[t, s] pi(a | s, t) P(s' | s, a)
    `pi` is either time-varying pi[t, s, a] (from `soft_value_iteration`) or stationary
    pi[s, a].
    """
    D = np.zeros((horizon, P.shape[0]))  # D[t, s]
    D[0] = start
    for t in range(horizon - 1):
        pi_t = pi[t] if pi.ndim == 3 else pi  # pi_t[s, a]
        flow = D[t][:, None] * pi_t  # flow[s, a] = Pr(s_t = s, a_t = a)
        D[t + 1] = flow.reshape(-1) @ P.reshape(-1, P.shape[2])
    return D
