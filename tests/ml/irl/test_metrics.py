"""Inverse-RL metrics: EPIC's invariances, EVD by hand and by brute force, likelihoods and
correlations against SciPy."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import sparse, stats

from ml.irl.metrics import (
    DecomposedReward,
    demonstration_nll,
    epic_distance,
    expected_value_difference,
    feature_expectation_gap,
    pearson,
    spearman,
)
from ml.tabular.gridworld import GridEnv, build_grid
from ml.tabular.mdp import TabularMDP, from_triplets

LEFT, DOWN, RIGHT, UP = 0, 1, 2, 3
GAMMA = 0.9
LAYOUT = ["S..", ".#.", "..G"]


def random_mdp(
    rng: np.random.Generator, n_states: int = 30, n_actions: int = 3, successors: int = 3
) -> sparse.csr_array:
    """P[(s, a), s'] with `successors` random successors (duplicates merge) per (s, a)."""
    rows = np.repeat(np.arange(n_states * n_actions), successors)
    next_states = rng.integers(0, n_states, size=rows.size)
    probabilities = rng.dirichlet(np.ones(successors), size=n_states * n_actions).reshape(-1)
    return from_triplets(rows, next_states, probabilities, n_states, n_actions)


def grid(slip: float = 0.2) -> TabularMDP:
    return build_grid(GridEnv(layout=LAYOUT, slip=slip))


def worlds() -> list[tuple[str, sparse.csr_array]]:
    return [("random", random_mdp(np.random.default_rng(0))), ("grid", grid().transitions)]


def random_rewards(
    rng: np.random.Generator, n_states: int, n_actions: int
) -> list[DecomposedReward]:
    """A reward received in s, one of (s, a), one for entering s', and a mixed one."""
    return [
        DecomposedReward(in_state_action=rng.normal(size=n_states)),
        DecomposedReward(in_state_action=rng.normal(size=(n_states, n_actions))),
        DecomposedReward(on_entering=rng.normal(size=n_states)),
        DecomposedReward(rng.normal(size=(n_states, n_actions)), rng.normal(size=n_states)),
    ]


def shaped(reward: DecomposedReward, phi: np.ndarray, discount: float) -> DecomposedReward:
    """R + gamma phi(s') - phi(s), still decomposed: x - phi[s], y + gamma phi[s']."""
    x, y = reward.in_state_action, reward.on_entering
    x_new = -phi if x is None else (x - phi if x.ndim == 1 else x - phi[:, None])
    return DecomposedReward(x_new, discount * phi if y is None else y + discount * phi)


def affine(reward: DecomposedReward, scale: float, offset: float) -> DecomposedReward:
    """scale R + offset (the offset goes into the state-action part)."""
    x, y = reward.in_state_action, reward.on_entering
    n_states = len(y) if x is None and y is not None else len(np.asarray(x))
    x_new = np.full(n_states, offset) if x is None else scale * x + offset
    return DecomposedReward(x_new, None if y is None else scale * y)


# -- EPIC --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "P"), worlds(), ids=["random", "grid"])
def test_epic_ignores_potential_shaping(name: str, P: sparse.csr_array) -> None:
    rng = np.random.default_rng(1)
    n_states, n_actions = P.shape[1], P.shape[0] // P.shape[1]
    for reward in random_rewards(rng, n_states, n_actions):
        phi = 10.0 * rng.normal(size=n_states)
        assert epic_distance(P, reward, shaped(reward, phi, GAMMA), GAMMA) < 1e-9


@pytest.mark.parametrize(("name", "P"), worlds(), ids=["random", "grid"])
def test_epic_ignores_positive_affine_maps_and_negation_is_1(
    name: str, P: sparse.csr_array
) -> None:
    rng = np.random.default_rng(2)
    n_states, n_actions = P.shape[1], P.shape[0] // P.shape[1]
    for reward in random_rewards(rng, n_states, n_actions):
        assert epic_distance(P, reward, affine(reward, 3.0, 2.0), GAMMA) < 1e-9
        assert abs(epic_distance(P, reward, affine(reward, -1.0, 0.0), GAMMA) - 1.0) < 1e-9
        # Both at once: shaped, rescaled and shifted is still the same reward.
        phi = rng.normal(size=n_states)
        both = affine(shaped(reward, phi, GAMMA), 0.5, -7.0)
        assert epic_distance(P, reward, both, GAMMA) < 1e-9


@pytest.mark.parametrize(("name", "P"), worlds(), ids=["random", "grid"])
def test_epic_is_a_symmetric_distance_in_0_1(name: str, P: sparse.csr_array) -> None:
    rng = np.random.default_rng(3)
    n_states, n_actions = P.shape[1], P.shape[0] // P.shape[1]
    rewards = random_rewards(rng, n_states, n_actions) + random_rewards(rng, n_states, n_actions)
    weights = {"state_weights": rng.random(n_states), "action_weights": rng.random(n_actions)}
    for options in ({}, weights):
        d = np.array([[epic_distance(P, a, b, GAMMA, **options) for b in rewards] for a in rewards])
        assert np.all((d >= 0.0) & (d <= 1.0))
        np.testing.assert_allclose(d, d.T, atol=1e-12)
        np.testing.assert_allclose(np.diag(d), 0.0, atol=1e-9)
        assert d[0, 4] > 0.1  # unrelated random rewards are far apart
        # The triangle inequality, over every triple.
        assert np.all(d[:, :, None] <= d[:, None, :] + d[None, :, :].transpose(0, 2, 1) + 1e-12)


def brute_force_epic(
    P: np.ndarray,
    R: np.ndarray,
    R2: np.ndarray,
    discount: float,
    d_s: np.ndarray,
    d_a: np.ndarray,
) -> float:
    """Definition 4.1 and the Pearson distance, literally, on dense R[s, a, s']."""

    def canonical(R: np.ndarray) -> np.ndarray:
        mean_from = np.einsum("a,t,uat->u", d_a, d_s, R)  # E[R(u, A, S')]
        overall = float(d_s @ mean_from)  # E[R(S, A, S')]
        return (
            R + discount * mean_from[None, None, :] - mean_from[:, None, None] - discount * overall
        )

    w = (d_s[:, None, None] * d_a[None, :, None] * P).reshape(-1)
    x, y = canonical(R).reshape(-1), canonical(R2).reshape(-1)
    x, y = x - w @ x, y - w @ y
    rho = (w @ (x * y)) / np.sqrt((w @ (x * x)) * (w @ (y * y)))
    return float(np.sqrt((1.0 - rho) / 2.0))


def test_epic_matches_definition_4_1_on_dense_rewards() -> None:
    rng = np.random.default_rng(4)
    n_states, n_actions = 6, 2
    P = random_mdp(rng, n_states, n_actions, successors=3)
    dense = P.toarray().reshape(n_states, n_actions, n_states)  # P[s, a, s']
    d_s, d_a = rng.dirichlet(np.ones(n_states)), rng.dirichlet(np.ones(n_actions))
    a, b = random_rewards(rng, n_states, n_actions)[3], random_rewards(rng, n_states, n_actions)[1]

    def tensor(reward: DecomposedReward) -> np.ndarray:
        x, y = reward.parts(n_states, n_actions)
        return x[:, :, None] + y[None, None, :]  # R[s, a, s']

    expected = brute_force_epic(dense, tensor(a), tensor(b), GAMMA, d_s, d_a)
    got = epic_distance(P, a, b, GAMMA, state_weights=3.0 * d_s, action_weights=d_a)
    assert abs(got - expected) < 1e-10
    # Dense P[s, a, s'] is accepted too.
    assert (
        abs(epic_distance(dense, a, b, GAMMA, state_weights=d_s, action_weights=d_a) - got) < 1e-12
    )


def test_pearson_calls_a_shaped_reward_different_where_epic_does_not() -> None:
    """Why EPIC: the shaped grid reward has other expected rewards R[s, a], so a plain
    correlation of reward tables is below 1 although both rewards make the same policies."""
    mdp = grid()
    rng = np.random.default_rng(5)
    reward = DecomposedReward(on_entering=mdp.state_reward)
    phi = 5.0 * rng.normal(size=mdp.n_states)
    other = shaped(reward, phi, GAMMA)

    def table(r: DecomposedReward) -> np.ndarray:
        x, y = r.parts(mdp.n_states, mdp.n_actions)
        return x + (mdp.P @ y)  # R[s, a] = x[s, a] + E[y(s') | s, a]

    assert pearson(table(reward), table(other)) < 0.9
    assert epic_distance(mdp.transitions, reward, other, GAMMA) < 1e-9


def test_epic_of_rewards_equivalent_to_zero() -> None:
    P = random_mdp(np.random.default_rng(6))
    n_states = P.shape[1]
    phi = np.random.default_rng(7).normal(size=n_states)
    zero, constant = DecomposedReward(), DecomposedReward(in_state_action=np.full(n_states, 4.0))
    shaping_only = shaped(DecomposedReward(), phi, GAMMA)
    reward = DecomposedReward(on_entering=phi)
    assert epic_distance(P, zero, constant, GAMMA) == 0.0
    assert epic_distance(P, constant, shaping_only, GAMMA) == 0.0
    assert epic_distance(P, zero, reward, GAMMA) == pytest.approx(np.sqrt(0.5))


def test_epic_handles_a_hundred_thousand_states() -> None:
    rng = np.random.default_rng(8)
    n_states = 100_000
    P = random_mdp(rng, n_states, 3, successors=2)
    r = rng.normal(size=n_states)
    phi = rng.normal(size=n_states)
    reward = DecomposedReward(in_state_action=r)
    assert epic_distance(P, reward, shaped(reward, phi, GAMMA), GAMMA) < 1e-9
    assert 0.5 < epic_distance(P, reward, DecomposedReward(on_entering=phi), GAMMA) <= 1.0


def test_epic_rejects_bad_shapes() -> None:
    P = random_mdp(np.random.default_rng(9))
    good = DecomposedReward(in_state_action=np.zeros(30))
    with pytest.raises(ValueError, match="in_state_action"):
        epic_distance(P, good, DecomposedReward(in_state_action=np.zeros(29)), GAMMA)
    with pytest.raises(ValueError, match="state_weights"):
        epic_distance(P, good, good, GAMMA, state_weights=-np.ones(30))


# -- expected value difference -----------------------------------------------------------------
def test_evd_on_a_deterministic_grid_by_hand() -> None:
    """No slip: the optimal path S -> right, right, down, down -> G pays three steps of -0.04
    and +1 on entering G; always pushing left into the edge pays -0.04 forever."""
    mdp = grid(slip=0.0)
    optimal = -0.04 * (1 + GAMMA + GAMMA**2) + GAMMA**3  # 0.6206
    stuck = -0.04 / (1 - GAMMA)  # -0.4
    always_left = np.full(mdp.n_states, LEFT)
    evd = expected_value_difference(
        mdp.transitions, mdp.R, always_left, GAMMA, mdp.start, terminal=mdp.terminal
    )
    assert evd == pytest.approx(optimal - stuck, abs=1e-10)
    path = np.array([RIGHT, RIGHT, DOWN, LEFT, LEFT, DOWN, RIGHT, RIGHT, LEFT])
    assert expected_value_difference(
        mdp.transitions, mdp.R, path, GAMMA, 0, terminal=mdp.terminal
    ) == pytest.approx(0.0, abs=1e-12)


def brute_force_values(
    P: np.ndarray, R: np.ndarray, pi: np.ndarray | None, terminal: np.ndarray
) -> np.ndarray:
    """V* (pi None) or V^pi by 2,000 plain dense sweeps (gamma^2000 ~ 1e-92)."""
    V = np.zeros(P.shape[0])
    for _ in range(2000):
        Q = R + GAMMA * P @ V  # Q[s, a]
        V = Q.max(axis=1) if pi is None else (pi * Q).sum(axis=1)
        V[terminal] = 0.0
    return V


def test_evd_on_a_slippery_grid_matches_brute_force() -> None:
    mdp = grid(slip=0.2)
    P, R, terminal, start = mdp.P, mdp.R, mdp.terminal, mdp.start
    v_star = brute_force_values(P, R, None, terminal)
    uniform = np.full((mdp.n_states, mdp.n_actions), 0.25)
    up = np.full(mdp.n_states, UP)
    optimal = np.argmax(R + GAMMA * P @ v_star, axis=1)
    for policy in (uniform, up, optimal):
        pi = np.eye(mdp.n_actions)[policy] if policy.ndim == 1 else policy
        expected = start @ v_star - start @ brute_force_values(P, R, pi, terminal)
        for dynamics in (mdp.transitions, P):
            evd = expected_value_difference(dynamics, R, policy, GAMMA, start, terminal=terminal)
            assert evd == pytest.approx(expected, abs=1e-9)
            assert evd >= -1e-12
        given = expected_value_difference(P, R, policy, GAMMA, start, terminal, v_star=v_star)
        assert given == pytest.approx(expected, abs=1e-9)
    assert expected_value_difference(P, R, optimal, GAMMA, start, terminal) < 1e-10
    assert expected_value_difference(P, R, up, GAMMA, start, terminal) > 0.5


def test_evd_rejects_bad_policies() -> None:
    mdp = grid()
    with pytest.raises(ValueError, match="actions"):
        expected_value_difference(mdp.P, mdp.R, np.full(9, 4), GAMMA, mdp.start)
    with pytest.raises(ValueError, match="summing to 1"):
        expected_value_difference(mdp.P, mdp.R, np.ones((9, 4)), GAMMA, mdp.start)


# -- demonstrations ----------------------------------------------------------------------------
def test_nll_of_a_uniform_policy_is_log_a() -> None:
    rng = np.random.default_rng(10)
    states, actions = rng.integers(0, 5, size=40), rng.integers(0, 3, size=40)
    uniform = np.full((5, 3), 1 / 3)
    lengths = np.array([10, 25, 5])
    assert demonstration_nll(uniform, states, actions) == pytest.approx(np.log(3))
    assert demonstration_nll(uniform, states, actions, lengths) == pytest.approx(np.log(3))
    assert demonstration_nll(np.stack([uniform] * 4), states, actions, lengths) == pytest.approx(
        np.log(3)
    )


def test_nll_indexes_time_varying_policies_by_step_within_the_episode() -> None:
    pi = np.zeros((2, 2, 2))  # pi[t, s, a]
    pi[0] = [[0.5, 0.5], [0.1, 0.9]]
    pi[1] = [[0.2, 0.8], [0.7, 0.3]]
    states, actions, lengths = np.array([0, 1, 0, 1]), np.array([1, 0, 0, 1]), np.array([3, 1])
    # Episode 0: t = 0, 1, 2 (clamped to 1); episode 1: t = 0.
    expected = -np.mean(np.log([pi[0, 0, 1], pi[1, 1, 0], pi[1, 0, 0], pi[0, 1, 1]]))
    assert demonstration_nll(pi, states, actions, lengths) == pytest.approx(expected)
    # The same demonstrations padded to [E, L] rows.
    padded_states, padded_actions = (
        np.array([[0, 1, 0], [1, 0, 0]]),
        np.array([[1, 0, 0], [1, 1, 1]]),
    )
    assert demonstration_nll(pi, padded_states, padded_actions, lengths) == pytest.approx(expected)
    # Without lengths, every row is a full episode.
    rows = demonstration_nll(pi, padded_states, padded_actions)
    full = -np.mean(
        np.log([pi[0, 0, 1], pi[1, 1, 0], pi[1, 0, 0], pi[0, 1, 1], pi[1, 0, 1], pi[1, 0, 1]])
    )
    assert rows == pytest.approx(full)


def test_nll_of_an_impossible_action_is_large_but_finite() -> None:
    pi = np.array([[1.0, 0.0]])
    nll = demonstration_nll(pi, np.array([0, 0]), np.array([0, 1]))
    assert np.isfinite(nll)
    assert nll == pytest.approx(-np.log(1e-300) / 2)
    with pytest.raises(ValueError, match="sum to"):
        demonstration_nll(pi, np.array([0, 0]), np.array([0, 1]), np.array([1]))


# -- correlations and feature expectations -----------------------------------------------------
def test_pearson_matches_scipy_and_weights_act_as_repetitions() -> None:
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=50), rng.normal(size=50)
    y = y + 0.5 * x
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    counts = rng.integers(1, 4, size=50)
    repeated = stats.pearsonr(np.repeat(x, counts), np.repeat(y, counts)).statistic
    assert pearson(x, y, weights=counts) == pytest.approx(repeated, abs=1e-12)
    assert pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert pearson(x, -x) == pytest.approx(-1.0)


def test_spearman_matches_scipy_with_ties() -> None:
    x = np.array([1.0, 2.0, 2.0, 3.0, 5.0, 4.0])
    y = np.array([2.0, 1.0, 3.0, 3.0, 6.0, 6.0])
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)


def test_constant_inputs_correlate_zero_without_warnings() -> None:
    x = np.arange(5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for f in (pearson, spearman):
            assert f(x, np.full(5, 0.1)) == 0.0
            assert f(np.full(5, 3.0), x) == 0.0
            assert f(np.zeros(5), np.zeros(5)) == 0.0
        assert pearson(x, np.full(5, 0.1), weights=np.arange(1.0, 6.0)) == 0.0
    with pytest.raises(ValueError, match="finite"):
        spearman(x, np.array([1.0, np.nan, 2.0, 3.0, 4.0]))


def test_feature_expectation_gap_is_the_euclidean_norm() -> None:
    assert feature_expectation_gap(np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, -1.0])) == 5.0
    assert feature_expectation_gap(np.ones(4), np.ones(4)) == 0.0
    with pytest.raises(ValueError, match="shape"):
        feature_expectation_gap(np.ones(3), np.ones(4))
