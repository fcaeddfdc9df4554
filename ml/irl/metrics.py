"""The numbers inverse-RL papers report: pure functions, arrays in, floats out.

A learned reward cannot be compared with the true one entry by entry: rewards that differ by
potential shaping, R'(s, a, s') = R(s, a, s') + gamma phi(s') - phi(s), or by a positive
scale and an offset, have the same optimal policies in every MDP of the same dynamics (Ng,
Harada & Russell 1999, "Policy Invariance under Reward Transformations", ICML), and inverse
RL only identifies a reward up to them. So the papers measure either what the learned reward
does or a distance that ignores those transformations:

- `expected_value_difference`: how much true reward the policy that is optimal for the
  learned reward loses against the true optimum (Levine, Popovic & Koltun 2011, "Nonlinear
  Inverse Reinforcement Learning with Gaussian Processes", NeurIPS; Wulfmeier, Ondruska &
  Posner 2015, "Maximum Entropy Deep Inverse Reinforcement Learning").
- `epic_distance`: the EPIC pseudometric of Gleave, Dennis, Legg, Russell & Leike 2021,
  "Quantifying Differences in Reward Functions" (ICLR): 0 exactly between rewards that differ
  by potential shaping and positive affine maps. Computed exactly (no sampling) for rewards
  R(s, a, s') = x[s, a] + y[s'] (`DecomposedReward`), over the non-zeros of the sparse P.
- `pearson` / `spearman`: the reward correlations of early IRL papers; not shaping-invariant,
  so a shaped copy of the true reward scores below 1 (which is why EPIC exists).
- `demonstration_nll`: the negative log-likelihood of held-out demonstrations under a learned
  policy (the objective of maximum-entropy IRL, Ziebart et al. 2008, per step).
- `feature_expectation_gap`: || mu_expert - mu_learner ||, the quantity apprenticeship
  learning drives to 0 (Abbeel & Ng 2004, "Apprenticeship Learning via Inverse Reinforcement
  Learning", ICML).

Dynamics follow `ml.tabular.dp`: P dense [S, A, S] or sparse (S * A, S) with row s * A + a =
Pr(. | s, a); R[s, a] is the expected immediate reward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ml.tabular import dp

# A side of a correlation whose standard deviation is below this fraction of its scale is
# constant: the rounding of a canonicalisation (a few ulps of the reward's magnitude) must
# not be mistaken for a signal.
CONSTANT = 1e-12
# Probabilities are clipped here before the log: a zero gives -log(1e-300) = 690.8, finite.
MIN_PROBABILITY = 1e-300
VI_TOLERANCE = 1e-10


# -- correlations ------------------------------------------------------------------------------
def _distribution(weights: np.ndarray | None, n: int, name: str) -> np.ndarray:
    """Non-negative weights[n] normalised to sum 1; uniform when None."""
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"{name} must be finite, non-negative and not all zero")
    return w / w.sum()


def _standardized(values: np.ndarray, w: np.ndarray, scale: float) -> np.ndarray | None:
    """(values - E values) / std under the distribution w, or None when values are constant
    (std at most CONSTANT * scale, `scale` being the magnitude the values are made of)."""
    centred = values - w @ values
    std = float(np.sqrt(w @ (centred * centred)))
    if not std > CONSTANT * scale:
        return None
    return centred / std


def _finite_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=np.float64).reshape(-1), np.asarray(y, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same number of entries, got {x.size}, {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite")
    return x, y


def _scale(values: np.ndarray) -> float:
    return float(np.max(np.abs(values))) if values.size else 0.0


def pearson(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Pearson correlation of x and y (flattened), weighted by `weights` (any non-negative
    scale; uniform when None).

    0.0 when either side is constant: a constant has no variation for the other side to
    follow, so there is no linear relation to measure (the formula is 0/0); 0 is the value
    that says "no evidence of agreement", which is what a learned reward that is flat tells.
    Raises ValueError for non-finite input rather than returning NaN.
    """
    x, y = _finite_pair(x, y)
    if x.size == 0:
        return 0.0
    w = _distribution(weights, x.size, "weights")
    zx, zy = _standardized(x, w, _scale(x)), _standardized(y, w, _scale(y))
    if zx is None or zy is None:
        return 0.0
    return float(np.clip(w @ (zx * zy), -1.0, 1.0))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation of x and y (flattened; ties get average ranks, as in
    `scipy.stats.spearmanr`): whether the learned reward orders states as the true one does.

    0.0 when either side is constant (all ranks tie; see `pearson`), never NaN: non-finite
    input raises ValueError.
    """
    x, y = _finite_pair(x, y)
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return 0.0
    rho = float(stats.spearmanr(x, y).statistic)
    return rho if np.isfinite(rho) else 0.0


# -- expected value difference -----------------------------------------------------------------
def _start_distribution(start: np.ndarray | int, n_states: int) -> np.ndarray:
    """start[s] from a distribution [S] or a single start state."""
    if isinstance(start, int | np.integer):
        if not 0 <= int(start) < n_states:
            raise ValueError(f"start state {start} is not in 0..{n_states - 1}")
        one = np.zeros(n_states)
        one[int(start)] = 1.0
        return one
    dist = np.asarray(start, dtype=np.float64)
    if dist.shape != (n_states,):
        raise ValueError(f"start must have shape ({n_states},), got {dist.shape}")
    return dist


def _policy(policy: np.ndarray, n_states: int, n_actions: int) -> np.ndarray:
    """A validated deterministic policy[s] (ints) or stochastic pi[s, a]."""
    policy = np.asarray(policy)
    if policy.shape == (n_states,):
        if not np.issubdtype(policy.dtype, np.integer):
            raise ValueError("a deterministic policy[s] must hold integer actions")
        if np.any((policy < 0) | (policy >= n_actions)):
            raise ValueError(f"policy actions must be in 0..{n_actions - 1}")
        return policy
    if policy.shape == (n_states, n_actions):
        if np.any(policy < 0) or not np.allclose(policy.sum(axis=1), 1.0, atol=1e-9):
            raise ValueError("a stochastic pi[s, a] must have non-negative rows summing to 1")
        return policy.astype(np.float64)
    raise ValueError(
        f"policy must be policy[s] of shape ({n_states},) or pi[s, a] of shape "
        f"({n_states}, {n_actions}), got {policy.shape}"
    )


def _optimal_values(
    P: dp.Dynamics, R: np.ndarray, discount: float, terminal: np.ndarray | None = None
) -> np.ndarray:
    """V*[s] under R[s, a]: value iteration to VI_TOLERANCE, then policy iteration from its
    greedy policy, which confirms it (one exact evaluation when it is already optimal) or
    improves it, so V* is an exact solve rather than a bounded iterate."""
    vi = dp.value_iteration(
        P, R, discount, terminal=terminal, tolerance=VI_TOLERANCE, max_iterations=1_000_000
    )
    return dp.policy_iteration(P, R, discount, terminal=terminal, policy0=vi.policy).V


def expected_value_difference(
    P: dp.Dynamics,
    true_R: np.ndarray,
    policy: np.ndarray,
    discount: float,
    start: np.ndarray | int,
    terminal: np.ndarray | None = None,
    v_star: np.ndarray | None = None,
) -> float:
    """EVD = start . V*_true - start . V^policy_true (Levine et al. 2011; Wulfmeier et al.
    2015): the true return the policy (typically the one optimal for a learned reward) gives
    up against the optimal one, from the start distribution start[s] (or one start state).

    V*_true is optimal for true_R[s, a] (`_optimal_values`, or `v_star[s]` computed once and
    passed in for many policies); V^policy_true is the exact value of `policy[s]` (int
    actions) or `pi[s, a]` under true_R (`dp.policy_evaluation`, an LU solve up to
    `dp.EXACT_SOLVE_STATES` states, sweeps to 1e-10 above). `terminal[s]` as in `ml.tabular.dp`
    (with discount 1 pass every state DP pins at 0, e.g. `TabularMDP.fixed`). Non-negative up
    to rounding.
    """
    n_states, n_actions = dp.sizes(P)
    R = np.asarray(true_R, dtype=np.float64)  # R[s, a]
    if R.shape != (n_states, n_actions):
        raise ValueError(f"true_R must have shape ({n_states}, {n_actions}), got {R.shape}")
    p0 = _start_distribution(start, n_states)  # p0[s]
    pi = _policy(policy, n_states, n_actions)  # policy[s] or pi[s, a]
    if v_star is None:
        v_star = _optimal_values(P, R, discount, terminal)  # V*[s]
    elif np.shape(v_star) != (n_states,):
        raise ValueError(f"v_star must have shape ({n_states},), got {np.shape(v_star)}")
    v_pi = dp.policy_evaluation(P, R, pi, discount, terminal=terminal)  # V^pi[s]
    return float(p0 @ np.asarray(v_star, dtype=np.float64) - p0 @ v_pi)


# -- EPIC --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class DecomposedReward:
    """A reward R(s, a, s') = x[s, a] + y[s'] (either part may be None, meaning 0).

    - a reward received in state s: `DecomposedReward(in_state_action=r)` with r[S]
      (broadcast over actions);
    - a reward of the state-action: `DecomposedReward(in_state_action=R)` with R[S, A];
    - a reward for entering s' (grids, `TabularMDP.state_reward`):
      `DecomposedReward(on_entering=r)` with r[S];
    - r potential-shaped by phi: `DecomposedReward(r - phi, gamma * phi)`.
    """

    in_state_action: np.ndarray | None = None  # x[s, a] or x[s]
    on_entering: np.ndarray | None = None  # y[s']

    def parts(self, n_states: int, n_actions: int) -> tuple[np.ndarray, np.ndarray]:
        """(x[S, A], y[S]) as float arrays, zeros for a missing part."""
        x = np.zeros((n_states, n_actions))
        if self.in_state_action is not None:
            given = np.asarray(self.in_state_action, dtype=np.float64)
            if given.shape == (n_states,):
                given = given[:, None]
            elif given.shape != (n_states, n_actions):
                raise ValueError(
                    f"in_state_action must have shape ({n_states},) or ({n_states}, "
                    f"{n_actions}), got {given.shape}"
                )
            x = x + given
        y = np.zeros(n_states)
        if self.on_entering is not None:
            y = np.asarray(self.on_entering, dtype=np.float64)
            if y.shape != (n_states,):
                raise ValueError(f"on_entering must have shape ({n_states},), got {y.shape}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError("reward parts must be finite")
        return x, y


def _canonical(
    reward: DecomposedReward, discount: float, d_s: np.ndarray, d_a: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """The canonicalised reward (Gleave et al. Definition 4.1), again decomposed, and the
    scale of the reward it came from.

    C(R)(s, a, s') = R(s, a, s') + gamma E[R(s', A, S')] - E[R(s, A, S')] - gamma E[R(S, A, S')]
    with S, S' ~ D_S and A ~ D_A independent. For R = x[s, a] + y[s'], with x_bar[u] =
    sum_a D_A(a) x[u, a] and y_bar = sum_s D_S(s) y[s]:
        C = x[s, a] + y[s'] + gamma (x_bar[s'] + y_bar) - (x_bar[s] + y_bar)
            - gamma (E_S x_bar[S] + y_bar)
    i.e. x_c[s, a] + y_c[s'] with x_c = x - x_bar[s] + constants, y_c = y + gamma x_bar.
    """
    n_states, n_actions = len(d_s), len(d_a)
    x, y = reward.parts(n_states, n_actions)  # x[s, a], y[s']
    x_bar = x @ d_a  # x_bar[s]
    y_bar = float(d_s @ y)
    constant = discount * y_bar - y_bar - discount * (float(d_s @ x_bar) + y_bar)
    x_c = x - x_bar[:, None] + constant  # x_c[s, a]
    y_c = y + discount * x_bar  # y_c[s']
    return x_c, y_c, _scale(x) + _scale(y)


def epic_distance(
    P: dp.Dynamics,
    reward_a: DecomposedReward,
    reward_b: DecomposedReward,
    discount: float,
    *,
    state_weights: np.ndarray | None = None,
    action_weights: np.ndarray | None = None,
) -> float:
    """EPIC distance (Gleave et al. 2021) between two decomposed rewards, exactly.

    Both are canonicalised (`_canonical`, with S, S' ~ D_S = state_weights[S] and A ~ D_A =
    action_weights[A], uniform by default), then compared by the Pearson distance
        D_rho = sqrt((1 - rho) / 2) = || Z_a - Z_b ||_2 / 2
    over the coverage distribution of transitions s ~ D_S, a ~ D_A, s' ~ P(. | s, a), where
    Z are the standardised canonical rewards; the second form is what is computed, being
    accurate near 0 (1 - rho loses everything below 1e-16, its square root below 1e-8). The
    expectation is a weighted sum over the non-zeros of the sparse P, with weights
    D_S(s) D_A(a) P(s'|s, a): vectorized over the CSR arrays, so 10^5 states take well under
    a second.

    In [0, 1]: 0 when the rewards differ by potential shaping and a positive affine map, 1
    when by a negative one. A reward whose canonical form is constant on the coverage (one
    equivalent to the zero reward) correlates with nothing: its distance to any other reward
    is sqrt(1/2) (rho = 0, as in `pearson`), and 0 to another such reward.
    """
    P = dp.as_sparse(P)
    n_states, n_actions = dp.sizes(P)
    d_s = _distribution(state_weights, n_states, "state_weights")  # D_S[s]
    d_a = _distribution(action_weights, n_actions, "action_weights")  # D_A[a]
    rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))  # (s, a) row of each non-zero
    s, a = np.divmod(rows, n_actions)  # s[k], a[k]
    s_next = P.indices  # s'[k]
    w = d_s[s] * d_a[a] * P.data  # w[k] = D_S(s) D_A(a) P(s'|s, a)
    total = float(w.sum())
    if not total > 0:
        raise ValueError("the coverage distribution is empty: no transition has weight")
    covered = w > 0
    s, a, s_next, w = s[covered], a[covered], s_next[covered], w[covered] / total

    def standardized(reward: DecomposedReward) -> np.ndarray | None:
        x_c, y_c, scale = _canonical(reward, discount, d_s, d_a)
        return _standardized(x_c[s, a] + y_c[s_next], w, scale)  # Z[k]

    z_a, z_b = standardized(reward_a), standardized(reward_b)
    if z_a is None or z_b is None:
        return 0.0 if z_a is None and z_b is None else float(np.sqrt(0.5))
    difference = z_a - z_b
    return float(min(1.0, 0.5 * np.sqrt(w @ (difference * difference))))


# -- demonstrations ----------------------------------------------------------------------------
def _flat_steps(
    states: np.ndarray, actions: np.ndarray, episode_lengths: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(s[N], a[N], t[N]): every demonstrated step with its time step within its episode."""
    states, actions = np.asarray(states), np.asarray(actions)
    if states.shape != actions.shape or states.ndim not in (1, 2):
        raise ValueError(
            f"states and actions must both be [N] or both [E, L], got {states.shape} and "
            f"{actions.shape}"
        )
    if states.ndim == 2:
        n_episodes, length = states.shape
        lengths = (
            np.full(n_episodes, length)
            if episode_lengths is None
            else np.asarray(episode_lengths, dtype=np.int64)
        )
        if lengths.shape != (n_episodes,) or np.any((lengths < 0) | (lengths > length)):
            raise ValueError(f"episode_lengths must be {n_episodes} lengths in 0..{length}")
        steps = np.broadcast_to(np.arange(length), states.shape)  # t[e, l]
        kept = steps < lengths[:, None]  # padding after each episode's end is ignored
        return states[kept], actions[kept], steps[kept]
    n = len(states)
    lengths = np.array([n]) if episode_lengths is None else np.asarray(episode_lengths, np.int64)
    if lengths.ndim != 1 or np.any(lengths <= 0) or int(lengths.sum()) != n:
        raise ValueError(f"episode_lengths must be positive and sum to the {n} steps")
    starts = np.cumsum(lengths) - lengths  # first row of each episode
    return states, actions, np.arange(n) - np.repeat(starts, lengths)


def demonstration_nll(
    pi: np.ndarray,
    states: np.ndarray,
    actions: np.ndarray,
    episode_lengths: np.ndarray | None = None,
) -> float:
    """Mean negative log-likelihood per demonstrated step, -mean_t log pi(a_t | s_t).

    `pi` is stationary pi[s, a] or time-varying pi[t, s, a] (a policy per time step, as a
    finite-horizon max-ent model has); step t of an episode uses pi[min(t, T - 1)]. The
    demonstrations are either flat, states[N] / actions[N] with episode_lengths[E]
    (positive, summing to N; None: one episode) as stored by `ml.data.trajectories`, or
    padded, states[E, L] / actions[E, L] with episode_lengths[E] (each in 0..L; None: all L
    steps) counting the leading steps of each row. Probabilities are clipped at
    MIN_PROBABILITY, so a demonstrated action the policy never takes costs -log(1e-300) =
    690.8 rather than inf. A uniform policy scores
    log(A).
    """
    pi = np.asarray(pi, dtype=np.float64)
    if pi.ndim not in (2, 3):
        raise ValueError(f"pi must be pi[s, a] or pi[t, s, a], got shape {pi.shape}")
    s, a, t = _flat_steps(states, actions, episode_lengths)  # s[N], a[N], t[N]
    if len(s) == 0:
        raise ValueError("there are no demonstrated steps")
    n_states, n_actions = pi.shape[-2], pi.shape[-1]
    if np.any((s < 0) | (s >= n_states)) or np.any((a < 0) | (a >= n_actions)):
        raise ValueError(f"states must be in 0..{n_states - 1} and actions in 0..{n_actions - 1}")
    pi_t = pi[None] if pi.ndim == 2 else pi  # pi_t[t, s, a], one step if stationary
    p = pi_t[np.minimum(t, len(pi_t) - 1), s, a]  # p[i] = pi_t(a_i | s_i)
    return float(-np.mean(np.log(np.maximum(p, MIN_PROBABILITY))))


def feature_expectation_gap(expert: np.ndarray, learner: np.ndarray) -> float:
    """|| mu_expert - mu_learner ||_2 of two feature-expectation vectors mu[k].

    Apprenticeship learning's stopping measure (Abbeel & Ng 2004), and also the norm of the
    gradient of MaxEnt IRL's log-likelihood without a prior, f~ - sum_s D_s f(s) (Ziebart et
    al. 2008, Eq. 6; `ml.irl.maxent_irl` logs it as "irl/feature_gap").
    """
    mu_e = np.asarray(expert, dtype=np.float64)  # mu_e[k]
    mu_l = np.asarray(learner, dtype=np.float64)  # mu_l[k]
    if mu_e.shape != mu_l.shape:
        raise ValueError(f"feature expectations differ in shape: {mu_e.shape}, {mu_l.shape}")
    return float(np.linalg.norm((mu_e - mu_l).reshape(-1)))
